//! The agent's data into the room: both sides' transcript as LiveKit transcription packets (any
//! LiveKit client raises `TranscriptionReceived`) and per-turn metrics as a user packet on topic
//! `frontdesk.turn`. They travel on the publisher connection's data channels, labelled as every
//! LiveKit SDK labels them (`_reliable` ordered, `_lossy` unordered without retransmits); in the
//! dual-PC mode the server learns of them in-band (DCEP) and forwards what arrives on them.

use std::sync::Arc;

use bytes::BytesMut;
use frontdesk_actors::provider::room::{RoomData, Speaker};
use livekit_protocol as proto;
use prost::Message;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::PeerConnection;

use super::error::TransportError;

pub const RELIABLE_LABEL: &str = "_reliable";
pub const LOSSY_LABEL: &str = "_lossy";
/// Topic of the per-turn metrics packet.
pub const TURN_TOPIC: &str = "frontdesk.turn";
/// Packets queued per channel while it opens (or the SCTP association is busy). Full: dropped,
/// counted.
const CHANNEL_QUEUE: usize = 64;
/// Edge name in `frontdesk_edge_dropped_items_total` for packets the channel did not take.
pub const EDGE_DATA_CHANNEL: &str = "room_data_channel";

/// Who is who, as the packets name them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    pub agent_identity: String,
    pub agent_sid: String,
    /// The agent's published audio track.
    pub agent_track: String,
    /// The caller and their audio track, once known.
    pub caller: Option<(String, String)>,
}

/// The encoded packet for `item`; `None` when it is not to be sent (transcripts off, or a
/// caller segment before the caller is known). `sequence` numbers reliable packets from 1.
pub fn encode(item: &RoomData, names: &Names, transcripts: bool, sequence: u32) -> Option<Vec<u8>> {
    let value = match item {
        RoomData::Transcript(seg) => {
            if !transcripts {
                return None;
            }
            let (identity, track) = match seg.speaker {
                Speaker::Agent => (names.agent_identity.clone(), names.agent_track.clone()),
                Speaker::Caller => names.caller.clone()?,
            };
            proto::data_packet::Value::Transcription(proto::Transcription {
                transcribed_participant_identity: identity,
                track_id: track,
                segments: vec![proto::TranscriptionSegment {
                    id: seg.id.clone(),
                    text: seg.text.clone(),
                    r#final: seg.is_final,
                    ..Default::default()
                }],
            })
        }
        RoomData::Turn(metrics) => {
            let payload = serde_json::to_vec(metrics).ok()?;
            proto::data_packet::Value::User(proto::UserPacket {
                payload,
                topic: Some(TURN_TOPIC.into()),
                ..Default::default()
            })
        }
    };
    #[allow(deprecated)] // `kind` is deprecated upstream but older clients still read it.
    let packet = proto::DataPacket {
        kind: proto::data_packet::Kind::Reliable as i32,
        participant_identity: names.agent_identity.clone(),
        participant_sid: names.agent_sid.clone(),
        sequence,
        value: Some(value),
        ..Default::default()
    };
    Some(packet.encode_to_vec())
}

/// The publisher's data channels: the session queues packets, a task per channel sends them
/// once it is open.
pub struct DataChannels {
    reliable: mpsc::Sender<BytesMut>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    sequence: u32,
}

impl DataChannels {
    /// Create both channels on `pc`; call before its first offer, so the offer carries SCTP.
    pub async fn open(pc: &Arc<dyn PeerConnection>) -> Result<Self, TransportError> {
        let reliable_init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let lossy_init = RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        let reliable = pc
            .create_data_channel(RELIABLE_LABEL, Some(reliable_init))
            .await?;
        let lossy = pc
            .create_data_channel(LOSSY_LABEL, Some(lossy_init))
            .await?;
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
        // Nothing is sent lossy yet; the channel exists because LiveKit clients expect the pair.
        let (_lossy_tx, lossy_rx) = mpsc::channel(1);
        Ok(Self {
            reliable: tx,
            tasks: vec![
                tokio::spawn(run(reliable, rx)),
                tokio::spawn(run(lossy, lossy_rx)),
            ],
            sequence: 0,
        })
    }

    /// Queue `item` without waiting; a full or closed channel drops it, counted.
    pub fn send(&mut self, item: &RoomData, names: &Names, transcripts: bool) {
        let Some(bytes) = encode(item, names, transcripts, self.sequence + 1) else {
            return;
        };
        self.sequence += 1;
        use frontdesk_actors::edge::DropReason;
        let reason = match self.reliable.try_send(BytesMut::from(&bytes[..])) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => DropReason::Overflow,
            Err(mpsc::error::TrySendError::Closed(_)) => DropReason::Closed,
        };
        frontdesk_actors::metrics::edge_dropped(EDGE_DATA_CHANNEL, reason, 1);
    }
}

/// Drain the channel's events (an unread event queue would stall its delivery) and send what is
/// queued once it is open.
async fn run(dc: Arc<dyn DataChannel>, mut rx: mpsc::Receiver<BytesMut>) {
    let mut open = false;
    loop {
        tokio::select! {
            ev = dc.poll() => match ev {
                None | Some(DataChannelEvent::OnClose) => break,
                Some(DataChannelEvent::OnOpen) => open = true,
                // Other participants' data: the agent does not read it.
                Some(_) => {}
            },
            item = rx.recv(), if open => match item {
                Some(bytes) => {
                    if let Err(e) = dc.send(bytes).await {
                        tracing::debug!(error = %e, "data channel send failed");
                        frontdesk_actors::metrics::edge_dropped(
                            EDGE_DATA_CHANNEL,
                            frontdesk_actors::edge::DropReason::Closed,
                            1,
                        );
                    }
                }
                None => break,
            },
        }
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
