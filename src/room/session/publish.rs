//! The call's transcript and turn metrics onto the publisher's data channels.

use frontdesk_actors::provider::room::{room_tag, RoomData};
use livekit_protocol as proto;

use super::{Next, Session};
use crate::room::data::{DataChannels, Names};

/// The data channels of the current publisher connection and our own names in the room.
#[derive(Default)]
pub(super) struct DataState {
    channels: Option<DataChannels>,
    identity: String,
    sid: String,
}

impl DataState {
    pub(super) fn close(&mut self) {
        if let Some(c) = self.channels.take() {
            for t in c.tasks {
                t.abort();
            }
        }
    }
}

impl Session {
    /// A new publisher connection (join or rejoin): new channels, our names from the join.
    /// Without channels the call goes on unpublished: its audio matters more than its transcript.
    pub(super) async fn open_data(&mut self, join: &proto::JoinResponse) {
        self.data.close();
        if let Some(me) = &join.participant {
            self.data.identity = me.identity.clone();
            self.data.sid = me.sid.clone();
        }
        match DataChannels::open(&self.publisher.pc).await {
            Ok(channels) => self.data.channels = Some(channels),
            Err(e) => {
                tracing::warn!(room = %room_tag(&self.req.room), error = %e, "no data channels: transcript and turn metrics are not published")
            }
        }
    }

    pub(super) fn publish(&mut self, item: RoomData) -> Next {
        let names = Names {
            agent_identity: self.data.identity.clone(),
            agent_sid: self.data.sid.clone(),
            agent_track: self
                .published
                .as_ref()
                .and_then(|p| p.track.as_ref())
                .map(|t| t.sid.clone())
                .unwrap_or_default(),
            caller: self.roster.caller_audio(),
        };
        let transcripts = self.cfg.publish_transcripts;
        if let Some(channels) = self.data.channels.as_mut() {
            channels.send(&item, &names, transcripts);
        }
        Next::Stay
    }
}
