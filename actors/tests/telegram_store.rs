//! The Telegram gateway's store functions on real Postgres: the update journal, the poller
//! lease, one-time link codes, questions answered once, and the bot pool.

mod support;

use artel_actors::store::{MasterKey, PendingLine, TelegramChat};
use artel_messages::{SecretValue, SessionChannel, TaskKind};
use serde_json::json;
use std::time::Duration;
use support::TestDb;

const BOT: i64 = 4242;

#[tokio::test]
async fn updates_are_journaled_once_and_handled_in_order() {
    let db = TestDb::new().await;
    let store = &db.store;
    assert_eq!(store.last_telegram_update(BOT).await.unwrap(), None);
    let updates = vec![(7, json!({"update_id": 7})), (8, json!({"update_id": 8}))];
    store.journal_telegram_updates(BOT, &updates).await.unwrap();
    // Delivered again (a webhook retry, a poll after a crash): kept as it was.
    store
        .journal_telegram_updates(BOT, &[(8, json!({"update_id": 8, "again": true}))])
        .await
        .unwrap();
    assert_eq!(store.last_telegram_update(BOT).await.unwrap(), Some(8));
    let pending = store
        .unhandled_telegram_updates_of_chat(BOT, 0, 10)
        .await
        .unwrap();
    assert_eq!(pending, updates);
    store.mark_telegram_update_handled(BOT, 7).await.unwrap();
    let pending = store
        .unhandled_telegram_updates_of_chat(BOT, 0, 10)
        .await
        .unwrap();
    assert_eq!(pending.iter().map(|u| u.0).collect::<Vec<_>>(), [8]);
}

#[tokio::test]
async fn each_chats_unhandled_updates_are_read_on_their_own_in_order() {
    let db = TestDb::new().await;
    let store = &db.store;
    let message = |id: i64, chat: i64| {
        (
            id,
            json!({"update_id": id, "message": {"chat": {"id": chat}, "text": "hi"}}),
        )
    };
    let press = |id: i64, chat: i64| {
        (
            id,
            json!({"update_id": id, "callback_query": {"message": {"chat": {"id": chat}}}}),
        )
    };
    let updates = vec![
        message(1, -77),
        message(2, 1001),
        press(3, -77),
        (4, json!({"update_id": 4, "inline_query": {"id": "q"}})),
        message(5, 1001),
    ];
    store.journal_telegram_updates(BOT, &updates).await.unwrap();
    store
        .journal_telegram_updates(BOT + 1, &[message(9, 5)])
        .await
        .unwrap();
    assert_eq!(
        store
            .telegram_chats_with_unhandled_updates(BOT)
            .await
            .unwrap(),
        [-77, 1001, 0]
    );
    let ids =
        |list: Vec<(i64, serde_json::Value)>| list.into_iter().map(|u| u.0).collect::<Vec<_>>();
    let of = |chat| store.unhandled_telegram_updates_of_chat(BOT, chat, 10);
    assert_eq!(ids(of(-77).await.unwrap()), [1, 3]);
    assert_eq!(ids(of(1001).await.unwrap()), [2, 5]);
    assert_eq!(ids(of(0).await.unwrap()), [4]);
    assert_eq!(
        ids(store
            .unhandled_telegram_updates_of_chat(BOT, 1001, 1)
            .await
            .unwrap()),
        [2]
    );
    store.mark_telegram_update_handled(BOT, 1).await.unwrap();
    store.mark_telegram_update_handled(BOT, 3).await.unwrap();
    assert_eq!(
        store
            .telegram_chats_with_unhandled_updates(BOT)
            .await
            .unwrap(),
        [1001, 0]
    );
    assert!(of(-77).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_process_holds_the_poller_lease_until_it_gives_it_back_or_it_expires() {
    let db = TestDb::new().await;
    let store = &db.store;
    let long = Duration::from_secs(60);
    assert!(store.lease_telegram_poller(BOT, "a", long).await.unwrap());
    assert!(!store.lease_telegram_poller(BOT, "b", long).await.unwrap());
    assert!(
        store.lease_telegram_poller(BOT, "a", long).await.unwrap(),
        "renewed"
    );
    store.release_telegram_poller(BOT, "a").await.unwrap();
    assert!(store.lease_telegram_poller(BOT, "b", long).await.unwrap());
    // An expired lease is anyone's.
    sqlx::query("UPDATE telegram_pollers SET expires_at = now() - interval '1 second'")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(store.lease_telegram_poller(BOT, "c", long).await.unwrap());
    assert!(!store.lease_telegram_poller(BOT, "b", long).await.unwrap());
}

#[tokio::test]
async fn a_link_code_works_once_and_a_question_is_answered_once() {
    let db = TestDb::new().await;
    let store = &db.store;
    let user = store.create_user("ann", None).await.unwrap();
    store
        .create_telegram_link_code(user.id, "code-1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.redeem_telegram_link_code("code-1", 99).await.unwrap(),
        Some(user.id)
    );
    assert_eq!(
        store.redeem_telegram_link_code("code-1", 98).await.unwrap(),
        None
    );
    assert_eq!(store.telegram_user(99).await.unwrap(), Some(user.id));

    let (_, task) = db.project_with_task("notes", TaskKind::Engineering).await;
    let session = store
        .create_session(user.id, SessionChannel::Telegram)
        .await
        .unwrap();
    let chat = TelegramChat {
        chat_id: 99,
        private: true,
        user: user.id,
        session: session.id,
    };
    store.link_telegram_chat(BOT, &chat).await.unwrap();
    let line = store
        .append_chat_line(
            session.id,
            artel_messages::event::ChatRole::ProductOwner,
            "Say \"yes\" to build it",
            artel_actors::store::ChatLink::None,
        )
        .await
        .unwrap()
        .unwrap();
    let pending = PendingLine {
        chat_id: 99,
        line_id: line.id,
        text: line.text.clone(),
        question: Some(task),
    };
    let first = store
        .telegram_question_for_line(BOT, &pending, "nonce-one", &line.text)
        .await
        .unwrap();
    // Sent again after a crash: the first nonce is kept.
    let again = store
        .telegram_question_for_line(BOT, &pending, "nonce-two", &line.text)
        .await
        .unwrap();
    assert_eq!(
        (first.nonce.as_str(), again.nonce.as_str()),
        ("nonce-one", "nonce-one")
    );
    assert!(
        store
            .answer_telegram_question("nonce-one", "yes")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .answer_telegram_question("nonce-one", "cancel")
            .await
            .unwrap()
            .is_none()
    );
    let stale = store
        .telegram_question(BOT, 99, "nonce-one")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.answer.as_deref(), Some("yes"));
}

#[tokio::test]
async fn the_bot_pool_gives_each_project_its_own_bot_and_takes_it_back() {
    let db = TestDb::new().await;
    let store = db.store.clone().with_master_key(MasterKey::generate());
    let token = SecretValue::new("555:pooled-token");
    let bot = store
        .register_telegram_bot(555, "pool_bot", &token)
        .await
        .unwrap();
    assert_eq!(bot.project, None);
    let raw: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM telegram_bots")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("pooled-token"),
        "stored encrypted"
    );

    let (first, _) = db.project_with_task("one", TaskKind::Deploy).await;
    let (second, _) = db.project_with_task("two", TaskKind::Deploy).await;
    let (id, given) = store.allocate_telegram_bot(first).await.unwrap().unwrap();
    assert_eq!((id, given.expose()), (555, "555:pooled-token"));
    // A redeploy keeps its bot; another project finds the pool empty.
    assert_eq!(
        store
            .allocate_telegram_bot(first)
            .await
            .unwrap()
            .map(|b| b.0),
        Some(555)
    );
    assert!(store.allocate_telegram_bot(second).await.unwrap().is_none());
    let released = store.release_telegram_bots(first).await.unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].1.expose(), "555:pooled-token");
    assert_eq!(
        store
            .allocate_telegram_bot(second)
            .await
            .unwrap()
            .map(|b| b.0),
        Some(555)
    );
    let bots = store.telegram_bots().await.unwrap();
    assert_eq!(bots[0].project, Some(second));
}
