//! The fake LiveKit server used by the worker tests holds to the protocol (protocols.md §1–2):
//! token checks, register first, register timeout, pings answered before registration.
#![allow(clippy::unwrap_used)]

#[path = "support/fake_livekit.rs"]
mod fake_livekit;

use std::time::Duration;

use fake_livekit::{FakeLiveKit, API_KEY, API_SECRET};
use futures_util::{SinkExt, StreamExt};
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as lk;
use livekit_protocol::server_message::Message as Reply;
use livekit_protocol::worker_message::Message as Out;
use prost::Message as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn token(secret: &str, agent: bool) -> String {
    AccessToken::with_api_key(API_KEY, secret)
        .with_grants(VideoGrants {
            agent,
            ..Default::default()
        })
        .to_jwt()
        .unwrap()
}

async fn connect(fake: &FakeLiveKit, auth: Option<String>) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("ws://{}/agent", fake.addr)
        .into_client_request()
        .unwrap();
    if let Some(a) = auth {
        req.headers_mut()
            .insert("authorization", a.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

fn status(e: tungstenite::Error) -> u16 {
    match e {
        tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("not an HTTP refusal: {other}"),
    }
}

async fn send(ws: &mut Ws, msg: Out) {
    let m = lk::WorkerMessage { message: Some(msg) };
    ws.send(Message::Binary(m.encode_to_vec().into()))
        .await
        .unwrap();
}

/// The next protobuf reply, or None once the server closed the connection.
async fn reply(ws: &mut Ws) -> Option<Reply> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        match frame {
            Some(Ok(Message::Binary(b))) => return lk::ServerMessage::decode(&*b).unwrap().message,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn bad_missing_or_grantless_tokens_get_401() {
    let fake = FakeLiveKit::start().await;
    let bad = [
        None,
        Some(token(API_SECRET, true)), // no "Bearer "
        Some(format!(
            "Bearer {}",
            token("wrong-secret-0123456789abcdef", true)
        )),
        Some(format!("Bearer {}", token(API_SECRET, false))), // no video.agent
    ];
    for auth in bad {
        assert_eq!(status(connect(&fake, auth).await.unwrap_err()), 401);
    }
    assert_eq!(fake.unauthorized(), 4);
    let ok = connect(&fake, Some(format!("Bearer {}", token(API_SECRET, true)))).await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn a_plain_http_request_gets_404() {
    let fake = FakeLiveKit::start().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .get(format!("http://{}/agent", fake.addr))
        .bearer_auth(token(API_SECRET, true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn register_first_pings_excepted() {
    let fake = FakeLiveKit::start().await;
    let auth = Some(format!("Bearer {}", token(API_SECRET, true)));
    let mut ws = connect(&fake, auth.clone()).await.unwrap();
    send(&mut ws, Out::Ping(lk::WorkerPing { timestamp: 42 })).await;
    let pong = reply(&mut ws).await;
    assert!(
        matches!(pong, Some(Reply::Pong(p)) if p.last_timestamp == 42),
        "{pong:?}"
    );
    send(
        &mut ws,
        Out::UpdateWorker(lk::UpdateWorkerStatus::default()),
    )
    .await;
    assert!(reply(&mut ws).await.is_none(), "dropped: not registered");

    let mut ws = connect(&fake, auth).await.unwrap();
    let register = frontdesk::worker::wire::register("agent", "1.0.0");
    send(&mut ws, register.message.unwrap()).await;
    match reply(&mut ws).await {
        Some(Reply::Register(r)) => assert!(r.worker_id.starts_with("AW_"), "{r:?}"),
        other => panic!("expected a registration reply: {other:?}"),
    }
}

#[tokio::test]
async fn an_unregistered_connection_times_out() {
    let fake = FakeLiveKit::start_with(Duration::from_millis(200)).await;
    let auth = Some(format!("Bearer {}", token(API_SECRET, true)));
    let mut ws = connect(&fake, auth).await.unwrap();
    assert!(reply(&mut ws).await.is_none());
}
