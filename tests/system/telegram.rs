//! The Telegram front door, end to end: the real `artel up` and its real teloxide client
//! against our own Bot API server on loopback ([`TelegramPeer`]), with real Postgres.

use crate::new::{Home, get};
use crate::support::{Artel, eventually, eventually_some};
use crate::telegram_peer::{Sent, TelegramPeer};
use serde_json::Value;
use std::time::Duration;

pub const TOKEN: &str = "424242:AAHtest-token_for-artel";
pub const ANN: i64 = 1001;
const LONG: Duration = Duration::from_secs(240);
pub const SHORT: Duration = Duration::from_secs(30);

pub async fn start(home: &Home, peer: &TelegramPeer, extra: &[(&str, &str)]) -> Artel {
    let mut env = vec![
        ("ARTEL_TELEGRAM__TOKEN", TOKEN),
        ("ARTEL_TELEGRAM__API_URL", peer.url.as_str()),
        ("ARTEL_TELEGRAM__ALLOWED_USERS", "1001,1002"),
    ];
    env.extend_from_slice(extra);
    crate::api::start(home, &env).await
}

/// The first button of a message's inline keyboard: (label, callback_data).
fn first_button(sent: &Sent) -> Option<(String, String)> {
    let button = sent
        .markup
        .as_ref()?
        .get("inline_keyboard")?
        .get(0)?
        .get(0)?;
    Some((
        button["text"].as_str()?.to_owned(),
        button["callback_data"].as_str()?.to_owned(),
    ))
}

pub async fn wait_sent(peer: &TelegramPeer, chat: i64, needle: &str, within: Duration) -> Sent {
    eventually_some(within, &format!("a message with {needle:?}"), || {
        let found = peer.sent_to(chat, needle).into_iter().next();
        async move { found }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_telegram_user_asks_for_a_service_confirms_the_spec_with_a_button_and_gets_the_url() {
    let home = Home::new("tg-whole").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[("ARTEL_ANALYST__CONFIRM", "true")]).await;

    peer.say(ANN, "make me a URL shortener with an API");
    // The spec comes as a question with buttons; the first is the affirmative answer.
    let question = eventually_some(LONG, "the spec question with a keyboard", || {
        let found = peer
            .sent_to(ANN, "Here is what I understood")
            .into_iter()
            .find(|s| first_button(s).is_some());
        async move { found }
    })
    .await;
    let (label, data) = first_button(&question).expect("a keyboard");
    assert_eq!(label, "Yes, build it");
    assert!(data.len() <= 64, "{data}");
    let press = peer.press(ANN, &question, &data);
    eventually(SHORT, "the press is answered", || {
        let answered = peer.callback_answers().iter().any(|(id, _)| *id == press);
        async move { answered }
    })
    .await;
    // The question's message now shows the decision, without buttons.
    eventually(SHORT, "the question shows the decision", || {
        let shown = peer
            .current(ANN, question.message_id)
            .is_some_and(|m| m.text.contains("you chose: Yes, build it") && m.markup.is_none());
        async move { shown }
    })
    .await;

    let live = wait_sent(&peer, ANN, "is live at http://", LONG).await;
    let url = live
        .text
        .split("is live at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a URL")
        .to_owned();
    let (status, _) = get(&url).await;
    assert!(status < 500, "the live service answers at {url}: {status}");

    // One status message per task, edited in place through its steps.
    let statuses: Vec<Sent> = peer
        .sent()
        .into_iter()
        .filter(|s| s.text.contains("<b>engineering of"))
        .collect();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let status = &statuses[0];
    let edits: Vec<Sent> = peer
        .edits()
        .into_iter()
        .filter(|e| e.message_id == status.message_id)
        .collect();
    assert!(!edits.is_empty(), "the status message was edited");
    eventually(SHORT, "the status message shows the task completed", || {
        let done = peer
            .current(ANN, status.message_id)
            .is_some_and(|m| m.text.contains("completed") && m.text.contains("✓ develop"));
        async move { done }
    })
    .await;

    // A second press of the same button is stale.
    let again = peer.press(ANN, &question, &data);
    eventually(SHORT, "the stale press is told it expired", || {
        let told = peer
            .callback_answers()
            .iter()
            .any(|(id, text)| *id == again && text.as_deref() == Some("this question has expired"));
        async move { told }
    })
    .await;

    // The commands are registered; each line the user said is journaled once.
    let commands = peer.commands().expect("setMyCommands");
    let names: Vec<&str> = commands
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert_eq!(
        names,
        ["new", "status", "projects", "deploy", "cancel", "help"]
    );
    let mut db = home.db().await;
    let lines: Vec<String> = sqlx::query_scalar(
        "SELECT text FROM session_messages m JOIN sessions s ON s.id = m.session_id \
         WHERE s.channel = 'telegram' AND m.role = 'user' ORDER BY m.id",
    )
    .fetch_all(&mut db)
    .await
    .expect("the transcript");
    assert_eq!(lines, ["make me a URL shortener with an API", "yes"]);
    let (code, ready) = artel.get("/health/ready").await;
    assert_eq!(code, 200, "{ready}");
    assert_eq!(
        ready["checks"]["telegram"]["ok"],
        Value::Bool(true),
        "{ready}"
    );
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_are_refused_and_a_link_code_links_them_once() {
    let home = Home::new("tg-link").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[]).await;
    const BOB: i64 = 3003;
    peer.say(BOB, "make me a blog");
    let refusal = wait_sent(&peer, BOB, "Sorry, I only work for people", SHORT).await;
    assert!(refusal.markup.is_none());

    let response = artel
        .request(reqwest::Method::POST, "/api/v1/telegram/links")
        .send()
        .await
        .expect("POST /api/v1/telegram/links");
    assert_eq!(response.status().as_u16(), 201);
    let link: Value = response.json().await.expect("JSON");
    let command = link["command"].as_str().expect("a command").to_owned();
    peer.say(BOB, &command);
    wait_sent(&peer, BOB, "Linked", SHORT).await;
    peer.say(BOB, "/projects");
    wait_sent(&peer, BOB, "You have no projects yet", SHORT).await;
    // The code works once.
    const EVE: i64 = 4004;
    peer.say(EVE, &command);
    wait_sent(&peer, EVE, "unknown, used or expired", SHORT).await;
    peer.say(EVE, "status");
    wait_sent(&peer, EVE, "Sorry, I only work for people", SHORT).await;
    // The command line mints codes too.
    let cli = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_artel"))
            .args([
                "telegram",
                "link",
                "--server",
                &artel.url,
                "--api-key",
                &artel.key,
            ])
            .output()
            .expect("artel telegram link")
    });
    let printed = String::from_utf8_lossy(&cli.stdout).to_string();
    let command = printed
        .split("minutes: ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| {
            panic!(
                "no command in {printed:?}: {}",
                String::from_utf8_lossy(&cli.stderr)
            )
        })
        .to_owned();
    assert!(command.starts_with("/start "), "{printed}");
    peer.say(EVE, &command);
    wait_sent(&peer, EVE, "Linked", SHORT).await;
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_kill_9_nothing_is_answered_twice_and_no_update_is_lost() {
    let home = Home::new("tg-kill").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[]).await;
    peer.say(ANN, "my projects");
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;
    peer.say(ANN, "/help");
    wait_sent(&peer, ANN, "I build and run small web services", SHORT).await;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(artel.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    drop(artel);
    // Said while artel is down: Telegram keeps it until a poll confirms it.
    peer.say(ANN, "status");
    // The kill left the lease held: the next start takes it once it expires (60 s).
    let again = start(&home, &peer, &[]).await;
    eventually(LONG, "the line said while down is answered", || {
        let n = peer.sent_to(ANN, "You have no projects yet").len();
        async move { n == 2 }
    })
    .await;
    // Give a duplicate the time it would need to show up, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(peer.sent_to(ANN, "You have no projects yet").len(), 2);
    assert_eq!(peer.sent_to(ANN, "or use /new, /status").len(), 1);
    let mut db = home.db().await;
    let lines: Vec<String> =
        sqlx::query_scalar("SELECT text FROM session_messages WHERE role = 'user' ORDER BY id")
            .fetch_all(&mut db)
            .await
            .expect("the transcript");
    assert_eq!(lines, ["my projects", "status"]);
    // The restarted poller resumed after the newest journaled update.
    let offsets = peer.offsets();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    again.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_artel_processes_on_one_token_poll_one_at_a_time() {
    let home = Home::new("tg-two").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let first = start(&home, &peer, &[]).await;
    let second = start(&home, &peer, &[]).await;
    peer.say(ANN, "my projects");
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(peer.sent_to(ANN, "You have no projects yet").len(), 1);
    let (conflicts, most) = peer.poll_conflicts();
    assert_eq!((conflicts, most), (0, 1), "one poller at a time");
    // The holder stops and gives the lease back; the other takes over.
    first.terminate();
    peer.say(ANN, "status");
    eventually(SHORT, "the other process answers", || {
        let n = peer.sent_to(ANN, "You have no projects yet").len();
        async move { n == 2 }
    })
    .await;
    assert_eq!(peer.poll_conflicts().0, 0);
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_is_deleted_once_stored_and_a_429_only_delays_the_reply() {
    let home = Home::new("tg-secret").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[]).await;
    peer.throttle(2);
    let message = peer.say(ANN, "API_KEY=sk-very-secret-42");
    wait_sent(&peer, ANN, "API_KEY", SHORT).await;
    assert_eq!(peer.throttled(), 2, "the 429s were waited out");
    eventually(SHORT, "the message holding the secret is deleted", || {
        let deleted = peer.deleted().contains(&(ANN, message));
        async move { deleted }
    })
    .await;
    let mut db = home.db().await;
    let lines: Vec<String> = sqlx::query_scalar("SELECT text FROM session_messages ORDER BY id")
        .fetch_all(&mut db)
        .await
        .expect("the transcript");
    assert!(
        lines.iter().all(|l| !l.contains("sk-very-secret-42")),
        "{lines:?}"
    );
    assert!(lines[0].contains("«redacted»"), "{lines:?}");
    // In a group the secret is not taken at all.
    let group = -77;
    let in_group = peer.say_in(group, ANN, "API_KEY=sk-group-secret");
    wait_sent(&peer, group, "I work in private chats only", SHORT).await;
    let _ = in_group;
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_shows_in_readiness_and_nothing_said_meanwhile_is_lost() {
    let home = Home::new("tg-outage").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[("ARTEL_TELEGRAM__POLL_TIMEOUT_SECS", "2")]).await;
    peer.say(ANN, "my projects");
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;

    peer.outage(true);
    peer.say(ANN, "status");
    let report = eventually_some(LONG, "readiness reports the outage", || {
        let artel = &artel;
        async move {
            let (code, report) = artel.get("/health/ready").await;
            let down = report["checks"]["telegram"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("Bad Gateway"));
            (code == 503 && down).then_some(report)
        }
    })
    .await;
    assert_eq!(
        report["checks"]["telegram"]["ok"],
        Value::Bool(false),
        "{report}"
    );
    peer.outage(false);
    eventually(LONG, "the line said during the outage is answered", || {
        let n = peer.sent_to(ANN, "You have no projects yet").len();
        async move { n == 2 }
    })
    .await;
    eventually(LONG, "ready again", || {
        let artel = &artel;
        async move { artel.get("/health/ready").await.0 == 200 }
    })
    .await;
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_takes_updates_with_the_right_secret_only() {
    let home = Home::new("tg-webhook").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let hook = "https://artel.example/telegram/webhook";
    let artel = start(
        &home,
        &peer,
        &[
            ("ARTEL_TELEGRAM__WEBHOOK_URL", hook),
            ("ARTEL_TELEGRAM__WEBHOOK_SECRET", "s3cret-token"),
        ],
    )
    .await;
    eventually(SHORT, "the webhook is registered with its secret", || {
        let set = peer.webhook() == Some((hook.to_owned(), Some("s3cret-token".to_owned())));
        async move { set }
    })
    .await;
    let update = serde_json::json!({"update_id": 900, "message": {
        "message_id": 5, "date": 1_700_000_000,
        "chat": {"id": ANN, "type": "private", "first_name": "Ann"},
        "from": {"id": ANN, "is_bot": false, "first_name": "Ann"},
        "text": "my projects"}});
    let post = |secret: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/telegram/webhook", artel.url))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(&update)
            .send()
    };
    let wrong = post("not-the-secret").await.expect("POST");
    assert_eq!(wrong.status().as_u16(), 401);
    let right = post("s3cret-token").await.expect("POST");
    assert_eq!(right.status().as_u16(), 200);
    wait_sent(&peer, ANN, "You have no projects yet", SHORT).await;
    // Telegram delivers again when unsure: the same update is handled once.
    assert_eq!(
        post("s3cret-token").await.expect("POST").status().as_u16(),
        200
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(peer.sent_to(ANN, "You have no projects yet").len(), 1);
    assert!(
        peer.offsets().is_empty(),
        "no getUpdates while a webhook is set"
    );
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_registers_a_pooled_bot_and_deleting_its_project_resets_it() {
    let home = Home::new("tg-pool").await;
    let peer = TelegramPeer::start(TOKEN).await;
    let artel = start(&home, &peer, &[]).await;
    let operator = crate::api::Client::new(&artel.url, Some(&artel.key));
    const POOLED: &str = "777:pooled-bot-token";
    // A token the Bot API does not know is refused.
    let (status, refused) = operator
        .post(
            "/api/v1/telegram/bots",
            serde_json::json!({"token": POOLED}),
        )
        .await;
    assert!(status >= 400, "{status} {refused}");
    peer.serve_token(POOLED);
    let (status, bot) = operator
        .post(
            "/api/v1/telegram/bots",
            serde_json::json!({"token": POOLED}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    assert_eq!(bot["bot_id"], 777);
    let (status, listed) = operator.get("/api/v1/telegram/bots").await;
    assert_eq!(
        (status, listed["items"][0]["bot_id"].as_i64()),
        (200, Some(777))
    );
    let mut db = home.db().await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM telegram_bots")
        .fetch_one(&mut db)
        .await
        .expect("the bot row");
    assert!(!String::from_utf8_lossy(&stored).contains("pooled-bot-token"));

    // A project holding the bot (as a deploy would leave it) is deleted: the bot is reset
    // and free again.
    let (status, project) = operator
        .post(
            "/api/v1/projects",
            serde_json::json!({"name": "weather-bot"}),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let id = project["id"].as_str().expect("an id").to_owned();
    sqlx::query("UPDATE telegram_bots SET project_id = $1::uuid, allocated_at = now()")
        .bind(&id)
        .execute(&mut db)
        .await
        .expect("allocate");
    let (status, _) = operator
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(peer.webhook_deletes().contains(&777));
    assert_eq!(peer.commands_of(777), Some(serde_json::json!([])));
    let (_, listed) = operator.get("/api/v1/telegram/bots").await;
    assert_eq!(listed["items"][0]["project"], Value::Null, "{listed}");
    artel.terminate();
}
