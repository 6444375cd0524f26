//! Telegram chats as supervised actors, end to end: each chat with updates is a
//! `chat/<chat id>` node under `gateways/telegram/chats` in `GET /api/v1/tree`, it hibernates
//! when idle and comes back on the next message, and one whose actor keeps failing (its
//! journal writes refused by Postgres) is restarted with backoff while other chats are
//! answered — and, once it can write again, answers without repeating itself.

use crate::new::Home;
use crate::support::{Artel, eventually, eventually_some};
use crate::telegram::{ANN, SHORT, TOKEN, start, wait_sent};
use crate::telegram_peer::TelegramPeer;
use serde_json::Value;
use std::time::Duration;

const BOB: i64 = 1002;

/// The tree node of `chat`'s actor, if it is live.
async fn chat_node(artel: &Artel, chat: i64) -> Option<Value> {
    let (status, tree) = artel.get("/api/v1/tree").await;
    assert_eq!(status, 200, "{tree}");
    let mut node = tree["roots"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == "artel")?;
    let name = format!("chat/{chat}");
    for step in ["gateways", "telegram", "chats", name.as_str()] {
        node = node["children"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == step)?;
    }
    Some(node.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_telegram_chat_is_an_actor_in_the_tree_that_hibernates_when_idle_and_wakes_again() {
    let home = Home::new("tg-chat-actor").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[("ARTEL_TELEGRAM__CHAT_IDLE_SECS", "2")]).await;
    // No chat has spoken: no chat actors yet.
    assert!(chat_node(&artel, ANN).await.is_none());

    peer.say(ANN, "my projects");
    let node = eventually_some(SHORT, "chat/1001 in the tree", || chat_node(&artel, ANN)).await;
    assert_eq!(node["role"], "telegram_chat", "{node}");
    assert_eq!(node["kind"], "actor", "{node}");
    assert_eq!(node["restarts"], 0, "{node}");
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;

    // Idle for two seconds, it hibernates: it leaves the tree, nobody restarts it.
    eventually(SHORT, "chat/1001 hibernates", || async {
        chat_node(&artel, ANN).await.is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(chat_node(&artel, ANN).await.is_none(), "still asleep");

    // The next message wakes it, and is answered.
    peer.say(ANN, "status");
    let node = eventually_some(SHORT, "chat/1001 back in the tree", || {
        chat_node(&artel, ANN)
    })
    .await;
    assert_eq!(node["restarts"], 0, "woken, not restarted: {node}");
    eventually(SHORT, "the message after hibernation is answered", || {
        let n = peer.sent_to(ANN, "You have no projects yet").len();
        async move { n == 2 }
    })
    .await;
    artel.terminate();
}

/// Makes Postgres refuse to mark `chat`'s updates handled, as a serialization failure (a
/// retryable error): the chat's actor fails after each update it handles.
async fn break_chat(db: &mut sqlx::PgConnection, chat: i64) {
    let function = format!(
        "CREATE FUNCTION break_chat() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.payload #>> '{{message,chat,id}}' = '{chat}' THEN \
         RAISE EXCEPTION 'chat {chat} is broken by the test' USING ERRCODE = '40001'; \
         END IF; RETURN NEW; END $$"
    );
    for sql in [
        function.as_str(),
        "CREATE TRIGGER break_chat BEFORE UPDATE ON telegram_updates \
         FOR EACH ROW EXECUTE FUNCTION break_chat()",
    ] {
        sqlx::query(sql).execute(&mut *db).await.expect(sql);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_telegram_chat_whose_actor_fails_is_restarted_and_other_chats_go_on() {
    let home = Home::new("tg-chat-fails").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[]).await;
    let mut db = home.db().await;
    break_chat(&mut db, BOB).await;

    peer.say(BOB, "my projects");
    let failing = eventually_some(SHORT, "chat/1002 restarted after failures", || async {
        chat_node(&artel, BOB)
            .await
            .filter(|n| n["restarts"].as_u64().is_some_and(|r| r >= 2))
    })
    .await;
    let error = failing["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("broken by the test"), "{failing}");

    // Meanwhile Ann's chat is answered by an actor of its own, which does not fail.
    peer.say(ANN, "my projects");
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;
    peer.say(ANN, "status");
    eventually(SHORT, "Ann's second message is answered", || {
        let n = peer.sent_to(ANN, "You have no projects yet").len();
        async move { n == 2 }
    })
    .await;
    let ann = chat_node(&artel, ANN).await.expect("chat/1001 is live");
    assert_eq!(ann["restarts"], 0, "{ann}");
    assert_eq!(ann["status"], "running", "{ann}");

    // Postgres takes the writes again: the restarted actor resumes from the journal, marks
    // Bob's first update handled without saying it again, and answers his next one.
    sqlx::query("DROP TRIGGER break_chat ON telegram_updates")
        .execute(&mut db)
        .await
        .expect("drop the trigger");
    peer.say(BOB, "status");
    eventually(
        Duration::from_secs(60),
        "Bob's next message is answered",
        || {
            let n = peer.sent_to(BOB, "You have no projects yet").len();
            async move { n == 2 }
        },
    )
    .await;
    let url = home.database.clone();
    eventually(SHORT, "every update is marked handled", || {
        let url = url.clone();
        async move {
            let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("connect");
            let unhandled: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM telegram_updates WHERE handled_at IS NULL",
            )
            .fetch_one(&mut db)
            .await
            .expect("count");
            unhandled == 0
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(peer.sent_to(BOB, "You have no projects yet").len(), 2);
    let lines: Vec<String> = sqlx::query_scalar(
        "SELECT m.text FROM session_messages m JOIN telegram_chats c ON c.session_id = \
         m.session_id WHERE c.chat_id = $1 AND m.role = 'user' ORDER BY m.id",
    )
    .bind(BOB)
    .fetch_all(&mut db)
    .await
    .expect("Bob's transcript");
    assert_eq!(lines, ["my projects", "status"]);
    artel.terminate();
}
