//! Who is in the room and which of them is the caller. Pure bookkeeping over the server's
//! participant snapshots (JoinResponse, ParticipantUpdate): it decides whom the call is with,
//! which audio tracks to subscribe to, and what the call should hear about (join, leave, mute,
//! unpublish). The caller is the participant the job names, else the first remote non-agent
//! participant that publishes audio (SIP participants included); once chosen, they stay the
//! caller until they leave. On the caller's side of a room (`loadtest`) the roles swap: the
//! party is the first agent that publishes audio.

use std::collections::HashMap;

use livekit_protocol as proto;
use proto::participant_info::{Kind, State};

/// What changed for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    CallerJoined {
        identity: String,
    },
    CallerLeft {
        identity: String,
    },
    /// Subscribe to this audio track of the caller.
    Subscribe {
        participant_sid: String,
        track_sid: String,
    },
    CallerMuted {
        muted: bool,
    },
    CallerUnpublished {
        identity: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AudioTrack {
    sid: String,
    muted: bool,
}

#[derive(Clone, Debug)]
struct Participant {
    version: u32,
    audio: Vec<AudioTrack>,
}

/// Whom we talk to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Party {
    /// We are the agent: the party is a caller (any participant but agents).
    #[default]
    Caller,
    /// We are a caller: the party is an agent.
    Agent,
}

#[derive(Debug, Default)]
pub struct Roster {
    party: Party,
    /// Our own participant sid (ignored in updates).
    me: String,
    /// The identity the job names, if any.
    wanted: Option<String>,
    /// The caller's identity once chosen (kept across a rejoin, when sids change).
    caller: Option<String>,
    /// The caller's current session (a reconnecting caller comes back under a new sid).
    caller_sid: Option<String>,
    participants: HashMap<String, Participant>,
    /// Caller audio tracks already subscribed.
    subscribed: Vec<String>,
}

impl Roster {
    pub fn new(party: Party, wanted: Option<String>) -> Self {
        Self {
            party,
            wanted: wanted.filter(|w| !w.is_empty()),
            ..Self::default()
        }
    }

    /// A new session (first join or rejoin): our sid and everyone already there.
    pub fn reset(&mut self, me: &str, others: &[proto::ParticipantInfo]) -> Vec<Change> {
        self.me = me.to_owned();
        self.participants.clear();
        self.subscribed.clear();
        self.caller_sid = None;
        self.apply(others)
    }

    /// Whether `track_sid` is one of the caller's audio tracks.
    pub fn is_caller_track(&self, track_sid: &str) -> bool {
        self.caller_participant()
            .is_some_and(|(_, p)| p.audio.iter().any(|t| t.sid == track_sid))
    }

    /// The caller's audio tracks we subscribe to (for SyncState after a resume).
    pub fn subscribed(&self) -> &[String] {
        &self.subscribed
    }

    pub fn caller_has_audio(&self) -> bool {
        self.caller_participant()
            .is_some_and(|(_, p)| !p.audio.is_empty())
    }

    /// The caller's identity and first audio track, once both are known (transcript packets).
    pub fn caller_audio(&self) -> Option<(String, String)> {
        let identity = self.caller.clone()?;
        let (_, p) = self.caller_participant()?;
        Some((identity, p.audio.first()?.sid.clone()))
    }

    fn caller_participant(&self) -> Option<(&String, &Participant)> {
        let sid = self.caller_sid.as_ref()?;
        self.participants.get_key_value(sid)
    }

    /// A ParticipantUpdate (or the JoinResponse's list).
    pub fn apply(&mut self, infos: &[proto::ParticipantInfo]) -> Vec<Change> {
        let mut changes = vec![];
        for info in infos {
            let agent = info.kind == Kind::Agent as i32;
            if info.sid == self.me || agent != (self.party == Party::Agent) {
                continue;
            }
            if info.state == State::Disconnected as i32 {
                self.remove(info, &mut changes);
            } else {
                self.upsert(info, &mut changes);
            }
        }
        changes
    }

    fn remove(&mut self, info: &proto::ParticipantInfo, changes: &mut Vec<Change>) {
        if self.participants.remove(&info.sid).is_some()
            && self.caller_sid.as_deref() == Some(info.sid.as_str())
        {
            self.caller_sid = None;
            self.subscribed.clear();
            changes.push(Change::CallerLeft {
                identity: info.identity.clone(),
            });
        }
    }

    fn upsert(&mut self, info: &proto::ParticipantInfo, changes: &mut Vec<Change>) {
        if let Some(old) = self.participants.get(&info.sid) {
            if info.version != 0 && info.version < old.version {
                return; // an older snapshot overtaken by a newer one
            }
        }
        let audio: Vec<AudioTrack> = info
            .tracks
            .iter()
            .filter(|t| t.r#type == proto::TrackType::Audio as i32)
            .map(|t| AudioTrack {
                sid: t.sid.clone(),
                muted: t.muted,
            })
            .collect();
        let previous = self.participants.insert(
            info.sid.clone(),
            Participant {
                version: info.version,
                audio: audio.clone(),
            },
        );
        if self.caller.is_none() && self.chooses(&info.identity, !audio.is_empty()) {
            self.caller = Some(info.identity.clone());
            changes.push(Change::CallerJoined {
                identity: info.identity.clone(),
            });
        }
        if self.caller.as_deref() == Some(info.identity.as_str()) {
            if self.caller_sid.as_deref() != Some(info.sid.as_str()) {
                // The caller's (new) session: what we subscribed to belonged to the old one.
                self.caller_sid = Some(info.sid.clone());
                self.subscribed.clear();
            }
            let before = previous.map(|p| p.audio).unwrap_or_default();
            self.caller_tracks(&info.sid, &info.identity, &before, &audio, changes);
        }
    }

    fn chooses(&self, identity: &str, has_audio: bool) -> bool {
        match &self.wanted {
            Some(w) => w == identity,
            None => has_audio,
        }
    }

    fn caller_tracks(
        &mut self,
        psid: &str,
        identity: &str,
        before: &[AudioTrack],
        now: &[AudioTrack],
        changes: &mut Vec<Change>,
    ) {
        for t in now {
            if !self.subscribed.contains(&t.sid) {
                self.subscribed.push(t.sid.clone());
                changes.push(Change::Subscribe {
                    participant_sid: psid.to_owned(),
                    track_sid: t.sid.clone(),
                });
            }
            let was = before.iter().find(|b| b.sid == t.sid);
            if was.is_some_and(|b| b.muted != t.muted) || (was.is_none() && t.muted) {
                changes.push(Change::CallerMuted { muted: t.muted });
            }
        }
        let gone = before.iter().any(|b| !now.iter().any(|t| t.sid == b.sid));
        if gone {
            self.subscribed.retain(|s| now.iter().any(|t| &t.sid == s));
            changes.push(Change::CallerUnpublished {
                identity: identity.to_owned(),
            });
        }
    }
}

#[cfg(test)]
#[path = "roster_tests.rs"]
mod tests;
