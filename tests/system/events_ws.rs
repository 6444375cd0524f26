//! The WebSocket event stream with a real client (tokio-tungstenite) against `artel up`:
//! a disconnect mid-task and a reconnect with `since` give every event exactly once and in
//! order; keys and scoping are checked before the upgrade; a client that stops reading is
//! closed with 4008 while the server carries on.

use crate::new::Home;
use crate::support::Artel;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const JOB: Duration = Duration::from_secs(120);

async fn connect(artel: &Artel, key: &str, query: &str) -> Result<Socket, WsError> {
    let url = format!(
        "{}/api/v1/events/ws?{query}",
        artel.url.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("a request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next event on `socket` (heartbeats skipped), or `None` when it closes.
async fn next_event(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(JOB, socket.next())
            .await
            .expect("an event within the job's time")?
            .expect("a frame");
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                match value["type"].as_str() {
                    Some("event") => return Some(value["event"].clone()),
                    Some("heartbeat") => continue,
                    other => panic!("unexpected message type {other:?}: {value}"),
                }
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn start(home: &Home) -> Artel {
    let env = home.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Artel::up(&env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_with_since_gets_every_event_exactly_once_and_in_order() {
    let home = Home::new("ws").await;
    let artel = start(&home).await;
    let (status, project) = artel
        .request(reqwest::Method::POST, "/api/v1/projects")
        .json(&json!({ "name": "todo" }))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map(|s| (s, ()))
        .unwrap();
    assert_eq!(status, 201, "{project:?}");

    // Subscribed from the start of the journal, before any work.
    let mut socket = connect(&artel, &artel.key, "project=todo&since=0")
        .await
        .expect("the upgrade");
    let status = artel
        .request(reqwest::Method::POST, "/api/v1/projects/todo/tasks")
        .json(&json!({ "kind": "engineering", "description": "a todo list API", "then_deploy": true }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);

    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 4 {
        seen.push(next_event(&mut socket).await.expect("an event"));
    }
    // Disconnect mid-task, stay away while the work goes on, come back with `since`.
    socket.close(None).await.unwrap();
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = seen.last().unwrap()["id"].as_i64().unwrap();
    let mut socket = connect(&artel, &artel.key, &format!("project=todo&since={last}"))
        .await
        .expect("the second upgrade");
    loop {
        let event = next_event(&mut socket).await.expect("the stream goes on");
        let done = event["kind"] == "deploy_succeeded";
        seen.push(event);
        if done {
            break;
        }
    }
    socket.close(None).await.unwrap();

    // Exactly the journal, in order, no gap and no duplicate.
    let ids: Vec<i64> = seen.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let last = *ids.last().unwrap();
    let (_, page) = artel
        .get("/api/v1/events?project=todo&since=0&limit=1000")
        .await;
    let journal: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .filter(|id| *id <= last)
        .collect();
    assert_eq!(ids, journal, "the stream is the journal");
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(seen.iter().all(|e| e["project"].is_string()));
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_scoping_are_checked_before_the_upgrade() {
    let home = Home::new("wsauth").await;
    let artel = start(&home).await;
    let created = artel
        .request(reqwest::Method::POST, "/api/v1/users")
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let bob = created["key"]["key"].as_str().unwrap().to_owned();
    let status = artel
        .request(reqwest::Method::POST, "/api/v1/projects")
        .json(&json!({ "name": "secret-plans" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let (_, project) = artel.get("/api/v1/projects/secret-plans").await;
    let id = project["id"].as_str().unwrap();

    let refused = |result: Result<Socket, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got an upgrade"),
    };
    assert_eq!(refused(connect(&artel, "artel_nope", "").await), 401);
    assert_eq!(
        refused(connect(&artel, &bob, &format!("project={id}")).await),
        404,
        "another user's project does not exist for bob"
    );
    assert_eq!(
        refused(connect(&artel, &artel.key, "since=minus-one").await),
        400
    );
    // A browser's way: the key in the query of the upgrade request.
    let url = format!(
        "{}/api/v1/events/ws?access_token={}",
        artel.url.replacen("http://", "ws://", 1),
        artel.key
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    socket.close(None).await.unwrap();

    // Bob's own stream sees nothing of the operator's project.
    let mut bobs = connect(&artel, &bob, "since=0")
        .await
        .expect("bob's upgrade");
    let nothing = tokio::time::timeout(Duration::from_millis(500), next_event(&mut bobs)).await;
    assert!(nothing.is_err(), "bob sees no event: {nothing:?}");
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_with_4008_and_the_server_carries_on() {
    let home = Home::new("wsslow").await;
    let artel = start(&home).await;
    let status = artel
        .request(reqwest::Method::POST, "/api/v1/projects")
        .json(&json!({ "name": "loud" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let (_, project) = artel.get("/api/v1/projects/loud").await;
    let project = project["id"].as_str().unwrap().to_owned();
    // A journal far larger than any socket buffer: 30,000 events of ~1 KiB.
    let mut db = home.db().await;
    sqlx::query(
        "INSERT INTO events (project_id, kind, payload, at) \
         SELECT $1::uuid, 'task_created', \
                jsonb_build_object('task_kind', 'engineering', 'description', repeat('x', 1000)), \
                now() FROM generate_series(1, 30000)",
    )
    .bind(&project)
    .execute(&mut db)
    .await
    .unwrap();

    let mut slow = connect(&artel, &artel.key, "project=loud&since=0")
        .await
        .expect("upgrade");
    // Not reading for longer than the server's send deadline…
    tokio::time::sleep(Duration::from_secs(7)).await;
    // …the server is still healthy and serves others meanwhile.
    let (status, _) = artel.get("/api/v1/me").await;
    assert_eq!(status, 200);
    let mut quick = connect(&artel, &artel.key, "project=loud")
        .await
        .expect("upgrade");
    quick.close(None).await.unwrap();

    // Reading again: what was queued, then the close with its code — not all 30,000.
    let mut events = 0;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), slow.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => events += 1,
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => panic!("after {events} events: {err}"),
            Ok(None) => panic!("closed without a close frame after {events} events"),
            Err(_) => panic!("no close within 30 s after {events} events"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::from(4008), "{close:?}");
    assert!(close.reason.contains("since="), "{close:?}");
    assert!(events < 30_000, "the server stopped sending: {events}");
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("artel_websocket_subscribers"), "{metrics}");
    artel.terminate();
}
