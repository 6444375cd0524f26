//! A Telegram Bot API server of our own, on loopback, for the real teloxide client in artel.
//!
//! It speaks the documented wire protocol (`/bot<token>/<method>`, methods case-insensitive,
//! JSON bodies, `{"ok": …, "result" | "error_code", "description", "parameters"}`) with
//! Telegram's exact error descriptions, which teloxide matches on: 401 `Unauthorized` for
//! another token, 409 for a second concurrent `getUpdates`, 400 "message is not modified",
//! 400 "can't parse entities" for HTML that is not escaped, 429 with
//! `parameters.retry_after` when told to throttle. It records everything it is sent.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A message the bot sent (or its latest edit).
#[derive(Debug, Clone)]
pub struct Sent {
    pub chat: i64,
    pub message_id: i64,
    pub text: String,
    pub markup: Option<Value>,
}

#[derive(Default)]
struct State {
    next_update: i64,
    /// Updates not confirmed by an offset yet.
    queue: Vec<Value>,
    polling: u32,
    next_message: i64,
    messages: HashMap<(i64, i64), Sent>,
    /// Every sendMessage, in order.
    sent: Vec<Sent>,
    /// Every successful editMessageText, in order.
    edits: Vec<Sent>,
    not_modified: u32,
    callback_answers: Vec<(String, Option<String>)>,
    deleted: Vec<(i64, i64)>,
    commands: Option<Value>,
    offsets: Vec<i64>,
    conflicts: u32,
    max_concurrent_polls: u32,
    throttle_sends: u32,
    throttled: u32,
    webhook: Option<String>,
    webhook_secret: Option<String>,
    /// Tokens of other bots this server also serves (a bot pool).
    other_tokens: Vec<String>,
    /// setMyCommands per bot id.
    commands_of: HashMap<i64, Value>,
    /// deleteWebhook calls, by bot id.
    webhook_deletes: Vec<i64>,
    /// Every method answers 502 (an outage).
    outage: bool,
}

/// The peer; stops with the test.
#[derive(Clone)]
pub struct TelegramPeer {
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    token: String,
    pub url: String,
}

fn ok(result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"ok": true, "result": result}))
}

fn error(status: u16, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status"))
        .json(json!({"ok": false, "error_code": status, "description": description}))
}

/// Telegram's HTML parse mode: only these tags, and `&` only in an entity.
fn parses_as_html(text: &str) -> bool {
    const TAGS: &[&str] = &["b", "i", "u", "s", "code", "pre", "a"];
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('&') {
            if !["amp;", "lt;", "gt;", "quot;"]
                .iter()
                .any(|e| after.starts_with(e))
            {
                return false;
            }
            rest = after;
            continue;
        }
        let Some(end) = tail.find('>') else {
            return false;
        };
        let tag = tail[1..end].trim_start_matches('/');
        let name = tag.split_whitespace().next().unwrap_or("");
        if !TAGS.contains(&name) {
            return false;
        }
        rest = &tail[end + 1..];
    }
    true
}

fn unescape(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": format!("User{id}")})
}

fn chat(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "type": "group", "title": "A group"})
    } else {
        json!({"id": id, "type": "private", "first_name": format!("User{id}")})
    }
}

impl TelegramPeer {
    /// Starts the peer for bot `token`.
    pub async fn start(token: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the peer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let peer = Self {
            state: Arc::new(Mutex::new(State {
                next_update: 1,
                next_message: 100,
                ..State::default()
            })),
            arrived: Arc::new(Notify::new()),
            token: token.to_owned(),
            url,
        };
        let served = peer.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(served.clone()))
                .app_data(web::PayloadConfig::default().limit(1 << 20))
                .default_service(web::to(route))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        peer
    }

    fn bot_id(&self) -> i64 {
        self.token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(0)
    }

    fn push(&self, make: impl FnOnce(i64, &mut State) -> Value) -> i64 {
        let mut state = self.state.lock();
        let id = state.next_update;
        state.next_update += 1;
        let mut update = make(id, &mut state);
        update["update_id"] = json!(id);
        state.queue.push(update);
        drop(state);
        self.arrived.notify_waiters();
        id
    }

    /// User `from` writes `text` in chat `chat_id` (their private chat when equal); answers
    /// the message id.
    pub fn say_in(&self, chat_id: i64, from: i64, text: &str) -> i64 {
        let mut message_id = 0;
        self.push(|_, state| {
            state.next_message += 1;
            message_id = state.next_message;
            json!({"message": {
                "message_id": message_id,
                "date": 1_700_000_000,
                "chat": chat(chat_id),
                "from": user(from),
                "text": text,
            }})
        });
        message_id
    }

    /// User `from` writes `text` in their private chat.
    pub fn say(&self, from: i64, text: &str) -> i64 {
        self.say_in(from, from, text)
    }

    /// User `from` presses the button with `data` under `message`.
    pub fn press(&self, from: i64, message: &Sent, data: &str) -> String {
        let id = format!("cb{}", self.state.lock().next_update);
        let query = id.clone();
        let message = json!({
            "message_id": message.message_id,
            "date": 1_700_000_000,
            "chat": chat(message.chat),
            "from": {"id": self.bot_id(), "is_bot": true, "first_name": "artel"},
            "text": unescape(&message.text),
        });
        self.push(|_, _| {
            json!({"callback_query": {
                "id": query,
                "from": user(from),
                "message": message,
                "chat_instance": "ci",
                "data": data,
            }})
        });
        id
    }

    /// Everything sent with sendMessage, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.state.lock().sent.clone()
    }

    /// Messages sent to `chat` whose plain text contains `needle`.
    pub fn sent_to(&self, chat: i64, needle: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.chat == chat && unescape(&s.text).contains(needle))
            .collect()
    }

    /// A message as it shows now (after edits).
    pub fn current(&self, chat: i64, message_id: i64) -> Option<Sent> {
        self.state.lock().messages.get(&(chat, message_id)).cloned()
    }

    /// Every successful edit, in order.
    pub fn edits(&self) -> Vec<Sent> {
        self.state.lock().edits.clone()
    }

    /// Every answerCallbackQuery: (query id, text).
    pub fn callback_answers(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().callback_answers.clone()
    }

    /// Every deleteMessage: (chat, message id).
    pub fn deleted(&self) -> Vec<(i64, i64)> {
        self.state.lock().deleted.clone()
    }

    /// The commands setMyCommands registered.
    pub fn commands(&self) -> Option<Value> {
        self.state.lock().commands.clone()
    }

    /// Every getUpdates offset asked for, in order.
    pub fn offsets(&self) -> Vec<i64> {
        self.state.lock().offsets.clone()
    }

    /// 409s answered, and the most getUpdates ever held at once.
    pub fn poll_conflicts(&self) -> (u32, u32) {
        let state = self.state.lock();
        (state.conflicts, state.max_concurrent_polls)
    }

    /// The next `n` sendMessage calls get 429 with retry_after 1.
    pub fn throttle(&self, n: u32) {
        self.state.lock().throttle_sends = n;
    }

    /// Starts or ends an outage: meanwhile every method answers 502 Bad Gateway.
    pub fn outage(&self, on: bool) {
        self.state.lock().outage = on;
    }

    /// The webhook set with setWebhook: (url, secret_token).
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        let state = self.state.lock();
        state
            .webhook
            .clone()
            .map(|url| (url, state.webhook_secret.clone()))
    }

    /// Serves bot `token` too (a bot of the pool).
    pub fn serve_token(&self, token: &str) {
        self.state.lock().other_tokens.push(token.to_owned());
    }

    /// The commands bot `bot_id` registered last.
    pub fn commands_of(&self, bot_id: i64) -> Option<Value> {
        self.state.lock().commands_of.get(&bot_id).cloned()
    }

    /// Bot ids deleteWebhook was called for.
    pub fn webhook_deletes(&self) -> Vec<i64> {
        self.state.lock().webhook_deletes.clone()
    }

    /// 429s answered so far.
    pub fn throttled(&self) -> u32 {
        self.state.lock().throttled
    }

    fn message_json(&self, sent: &Sent) -> Value {
        let mut message = json!({
            "message_id": sent.message_id,
            "date": 1_700_000_000,
            "chat": chat(sent.chat),
            "from": {"id": self.bot_id(), "is_bot": true, "first_name": "artel"},
            "text": unescape(&sent.text),
        });
        if let Some(markup) = &sent.markup {
            message["reply_markup"] = markup.clone();
        }
        message
    }

    async fn get_updates(&self, params: &Value) -> HttpResponse {
        let offset = params["offset"].as_i64().unwrap_or(0);
        let timeout = params["timeout"].as_u64().unwrap_or(0).min(50);
        {
            let mut state = self.state.lock();
            if state.polling > 0 {
                state.conflicts += 1;
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one \
                     bot instance is running",
                );
            }
            state.polling += 1;
            state.max_concurrent_polls = state.max_concurrent_polls.max(state.polling);
            state.offsets.push(offset);
            state
                .queue
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let updates = loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Registered before the queue is read, so a push in between is not missed.
            arrived.as_mut().enable();
            let ready: Vec<Value> = self.state.lock().queue.clone();
            if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
                break ready;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        };
        self.state.lock().polling -= 1;
        ok(Value::Array(updates))
    }

    fn handle(&self, bot: i64, method: &str, params: &Value) -> HttpResponse {
        let mut state = self.state.lock();
        match method {
            "getme" => ok(json!({
                "id": bot, "is_bot": true, "first_name": "artel",
                "username": "artel_test_bot", "can_join_groups": true,
                "can_read_all_group_messages": false, "supports_inline_queries": false,
                "can_connect_to_business": false, "has_main_web_app": false,
            })),
            "sendmessage" => {
                if state.throttle_sends > 0 {
                    state.throttle_sends -= 1;
                    state.throttled += 1;
                    return HttpResponse::TooManyRequests().json(json!({
                        "ok": false, "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1},
                    }));
                }
                let text = params["text"].as_str().unwrap_or("").to_owned();
                if params["parse_mode"] == "HTML" && !parses_as_html(&text) {
                    return error(
                        400,
                        "Bad Request: can't parse entities: Unsupported start tag at byte offset 0",
                    );
                }
                if unescape(&text).chars().count() > 4096 {
                    return error(400, "Bad Request: message is too long");
                }
                let chat = params["chat_id"].as_i64().unwrap_or(0);
                state.next_message += 1;
                let sent = Sent {
                    chat,
                    message_id: state.next_message,
                    text,
                    markup: params.get("reply_markup").cloned(),
                };
                state.messages.insert((chat, sent.message_id), sent.clone());
                state.sent.push(sent.clone());
                drop(state);
                ok(self.message_json(&sent))
            }
            "editmessagetext" => {
                let chat = params["chat_id"].as_i64().unwrap_or(0);
                let id = params["message_id"].as_i64().unwrap_or(0);
                let text = params["text"].as_str().unwrap_or("").to_owned();
                let markup = params.get("reply_markup").cloned();
                let Some(current) = state.messages.get(&(chat, id)).cloned() else {
                    return error(400, "Bad Request: message to edit not found");
                };
                if current.text == text && current.markup == markup {
                    state.not_modified += 1;
                    return error(
                        400,
                        "Bad Request: message is not modified: specified new message content \
                         and reply markup are exactly the same as a current content and reply \
                         markup of the message",
                    );
                }
                if !parses_as_html(&text) {
                    return error(400, "Bad Request: can't parse entities");
                }
                let edited = Sent {
                    chat,
                    message_id: id,
                    text,
                    markup,
                };
                state.messages.insert((chat, id), edited.clone());
                state.edits.push(edited.clone());
                drop(state);
                ok(self.message_json(&edited))
            }
            "answercallbackquery" => {
                state.callback_answers.push((
                    params["callback_query_id"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    params["text"].as_str().map(str::to_owned),
                ));
                ok(json!(true))
            }
            "deletemessage" => {
                let key = (
                    params["chat_id"].as_i64().unwrap_or(0),
                    params["message_id"].as_i64().unwrap_or(0),
                );
                state.deleted.push(key);
                ok(json!(true))
            }
            "setmycommands" => {
                let commands = match &params["commands"] {
                    Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                    other => other.clone(),
                };
                state.commands_of.insert(bot, commands.clone());
                if bot == self.bot_id() {
                    state.commands = Some(commands);
                }
                ok(json!(true))
            }
            "setwebhook" => {
                state.webhook = params["url"].as_str().map(str::to_owned);
                state.webhook_secret = params["secret_token"].as_str().map(str::to_owned);
                ok(json!(true))
            }
            "deletewebhook" => {
                state.webhook_deletes.push(bot);
                state.webhook = None;
                ok(json!(true))
            }
            "getwebhookinfo" => ok(json!({
                "url": state.webhook.clone().unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": state.queue.len(),
            })),
            _ => error(404, "Not Found: method not found"),
        }
    }
}

async fn route(req: HttpRequest, body: web::Bytes, peer: web::Data<TelegramPeer>) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    let Some((bot, method)) = path.split_once('/') else {
        return error(404, "Not Found");
    };
    let token = bot.strip_prefix("bot").unwrap_or("");
    if token != peer.token && !peer.state.lock().other_tokens.iter().any(|t| t == token) {
        return error(401, "Unauthorized");
    }
    let bot_id = token
        .split_once(':')
        .and_then(|(id, _)| id.parse::<i64>().ok())
        .unwrap_or(0);
    let method = method.to_ascii_lowercase();
    if peer.state.lock().outage {
        return error(502, "Bad Gateway");
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut params: Value = if body.is_empty() {
        json!({})
    } else if let Some(boundary) = content_type.split("boundary=").nth(1) {
        multipart(&body, boundary.trim_matches('"'))
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| json!({}))
    };
    for (k, v) in url_pairs(req.query_string()) {
        params[k] = json!(v);
    }
    // chat_id may come as a string.
    if let Some(id) = params["chat_id"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
    {
        params["chat_id"] = json!(id);
    }
    if method == "getupdates" {
        return peer.get_updates(&params).await;
    }
    peer.handle(bot_id, &method, &params)
}

/// The text fields of a `multipart/form-data` body (teloxide sends setWebhook so).
fn multipart(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        fields.insert(
            name.to_owned(),
            json!(value.trim_end_matches("\r\n").to_owned()),
        );
    }
    Value::Object(fields)
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_peer_reads_html_like_telegram() {
    assert!(parses_as_html("<b>x</b> &lt;y&gt; &amp;"));
    assert!(!parses_as_html("Vec<String>"));
    assert!(!parses_as_html("a & b"));
    assert_eq!(unescape("<b>a</b> &lt;b&gt;"), "a <b>");
}
