//! A scripted LLM peer on loopback: a small HTTP/1.1 server of our own that speaks both
//! dialects — OpenAI Chat Completions (`POST /v1/chat/completions`) and Anthropic Messages
//! (`POST /v1/messages`), as JSON or SSE as the request asks — so tests drive the real client
//! code over a real socket.
//!
//! It plays a script of [`Turn`]s, one per request, in order: a [`Reply`] (text and tool
//! calls, with usage) rendered in the dialect and mode of the request, or a [`Fault`] (a 429
//! with `retry-after`, a 529, a 500, a hang, a stream dropped or stalled midway, a context overflow in a
//! vendor's shape, an error event inside a stream, any raw response). It records every
//! request (headers and body) for assertions. When the script runs out it answers 500 and
//! the peer panics when dropped, so a test that asks more than it scripted fails loudly.
//! Hand-written over a `TcpListener` so faults can break the protocol where a real server
//! would (a chunked body cut short, a socket that never answers).

use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Turn {
    /// A successful answer.
    Reply(Reply),
    /// A failure.
    Fault(Fault),
}

/// What the model says: text, then tool calls.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub text: String,
    /// `(id, name, arguments)`.
    pub tool_calls: Vec<(String, String, Value)>,
    /// Normalized usage: `input` includes `cached`; rendered per vendor.
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    /// OpenAI streams only: every tool call whole, in one chunk, at index 0 (Ollama's habit).
    pub ollama_indexes: bool,
}

/// A vendor's context-overflow body.
#[derive(Debug, Clone, Copy)]
pub enum OverflowShape {
    OpenAi,
    Anthropic,
    /// vLLM's old top-level `{"object": "error", ...}`.
    VllmLegacy,
    /// llama.cpp's `exceed_context_size_error`.
    LlamaCpp,
}

/// A scripted failure.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with these headers (e.g. `retry-after: 2`), body in the request's dialect.
    RateLimited(Vec<(&'static str, String)>),
    /// 529 `overloaded_error`.
    Overloaded,
    /// 500.
    ServerError,
    /// Reads the request and never answers.
    Hang,
    /// Starts the answer (JSON or SSE) and closes the socket halfway.
    DropMidway(Reply),
    /// Starts a streamed answer and goes silent halfway, the socket left open.
    StallMidway(Reply),
    /// 400 with a context-overflow body in a vendor's shape.
    ContextOverflow(OverflowShape),
    /// A stream that starts, then sends an error event (Anthropic `overloaded_error`, or an
    /// OpenAI-style `{"error": ...}` chunk).
    ErrorEventMidway,
    /// Any status, headers and body.
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

/// A request as the peer received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The body as received, for "never contains" assertions.
    pub raw: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Everything received, head and body, as text.
    pub fn everything(&self) -> String {
        let head: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!(
            "{} {}\n{}\n\n{}",
            self.method,
            self.path,
            head.join("\n"),
            self.raw
        )
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Turn>,
    requests: Vec<Recorded>,
    overruns: Vec<String>,
}

/// The running peer; stops with the test's runtime.
pub struct LlmPeer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl LlmPeer {
    /// Starts a peer that will play `script`.
    pub async fn start(script: impl IntoIterator<Item = Turn>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the LLM peer");
        let url = format!("http://{}", listener.local_addr().expect("peer address"));
        let state = Arc::new(Mutex::new(State {
            script: script.into_iter().collect(),
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { url, state }
    }

    /// The base URL an OpenAI-dialect client is given (`…/v1`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().requests.clone()
    }

    /// Adds `turn` to the end of the script (a test that scripts as it goes).
    pub fn push(&self, turn: Turn) {
        self.state.lock().script.push_back(turn);
    }

    /// Turns not played yet.
    pub fn remaining(&self) -> usize {
        self.state.lock().script.len()
    }

    /// The requests that found the script empty (taking them means the test saw them).
    pub fn take_overruns(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().overruns)
    }
}

impl Drop for LlmPeer {
    fn drop(&mut self) {
        let overruns = std::mem::take(&mut self.state.lock().overruns);
        if !overruns.is_empty() && !std::thread::panicking() {
            panic!("the scripted LLM peer ran out of turns: {overruns:?}");
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    OpenAi,
    Anthropic,
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let dialect = match request.path.as_str() {
        "/v1/chat/completions" => Some(Dialect::OpenAi),
        "/v1/messages" => Some(Dialect::Anthropic),
        _ => None,
    };
    let stream = request.body["stream"] == json!(true);
    let include_usage = request.body["stream_options"]["include_usage"] == json!(true);
    let turn = {
        let mut state = state.lock();
        state.requests.push(request.clone());
        let number = state.requests.len();
        match (dialect, state.script.pop_front()) {
            (Some(_), Some(turn)) => Ok(turn),
            (None, turn) => {
                if let Some(turn) = turn {
                    state.script.push_front(turn);
                }
                let why = format!("request #{number} to unknown path {}", request.path);
                state.overruns.push(why.clone());
                Err((404, why))
            }
            (Some(_), None) => {
                let why = format!(
                    "scripted LLM peer: the script ran out at request #{number} ({})",
                    request.path
                );
                state.overruns.push(why.clone());
                Err((500, why))
            }
        }
    };
    let dialect = dialect.unwrap_or(Dialect::OpenAi);
    let turn = match turn {
        Ok(turn) => turn,
        Err((status, why)) => {
            let body = error_body(dialect, "api_error", &why);
            return respond(&mut socket, status, &[], &body).await;
        }
    };
    match turn {
        Turn::Reply(reply) if stream => {
            let events = sse_events(dialect, &reply, include_usage);
            write_sse(&mut socket, &events, events.len()).await;
        }
        Turn::Reply(reply) => {
            respond(
                &mut socket,
                200,
                &[],
                &json_reply(dialect, &reply).to_string(),
            )
            .await
        }
        Turn::Fault(fault) => play_fault(&mut socket, dialect, stream, include_usage, fault).await,
    }
}

async fn play_fault(
    socket: &mut TcpStream,
    dialect: Dialect,
    stream: bool,
    include_usage: bool,
    fault: Fault,
) {
    match fault {
        Fault::RateLimited(headers) => {
            let body = error_body(dialect, "rate_limit_error", "Rate limit reached, slow down");
            respond(socket, 429, &headers, &body).await
        }
        Fault::Overloaded => {
            let body = error_body(dialect, "overloaded_error", "Overloaded");
            respond(socket, 529, &[], &body).await
        }
        Fault::ServerError => {
            let body = error_body(dialect, "api_error", "Internal server error");
            respond(socket, 500, &[], &body).await
        }
        Fault::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Fault::DropMidway(reply) if stream => {
            let events = sse_events(dialect, &reply, include_usage);
            write_sse(socket, &events, events.len() / 2).await;
        }
        Fault::StallMidway(reply) => {
            let events = sse_events(dialect, &reply, include_usage);
            write_sse_head(socket).await;
            write_events(socket, &events[..events.len() / 2]).await;
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Fault::DropMidway(reply) => {
            let body = json_reply(dialect, &reply).to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body.as_bytes()[..body.len() / 2]).await;
            let _ = socket.shutdown().await;
        }
        Fault::ContextOverflow(shape) => {
            respond(socket, 400, &[], &overflow_body(shape).to_string()).await
        }
        Fault::ErrorEventMidway => {
            let reply = Reply::text("partial answer");
            let mut events = sse_events(dialect, &reply, false);
            events.truncate(3);
            events.push(match dialect {
                Dialect::Anthropic => (
                    Some("error"),
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).to_string(),
                ),
                Dialect::OpenAi => (
                    None,
                    json!({"error": {"message": "upstream failed", "type": "server_error", "code": 502}}).to_string(),
                ),
            });
            write_sse(socket, &events, events.len()).await;
        }
        Fault::Raw {
            status,
            headers,
            body,
        } => respond(socket, status, &headers, &body).await,
    }
}

impl Reply {
    pub fn text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            input: 100,
            output: 10,
            ..Self::default()
        }
    }

    pub fn tool_call(id: &str, name: &str, arguments: Value) -> Self {
        Self {
            input: 100,
            output: 10,
            ..Self::default()
        }
        .and_tool_call(id, name, arguments)
    }

    pub fn and_tool_call(mut self, id: &str, name: &str, arguments: Value) -> Self {
        self.tool_calls
            .push((id.to_owned(), name.to_owned(), arguments));
        self
    }

    pub fn usage(mut self, input: u64, output: u64, cached: u64) -> Self {
        (self.input, self.output, self.cached) = (input, output, cached);
        self
    }

    pub fn ollama_indexes(mut self) -> Self {
        self.ollama_indexes = true;
        self
    }

    pub fn turn(self) -> Turn {
        Turn::Reply(self)
    }
}

fn openai_usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input,
        "completion_tokens": reply.output,
        "total_tokens": reply.input + reply.output,
        "prompt_tokens_details": {"cached_tokens": reply.cached},
    })
}

fn anthropic_usage(reply: &Reply) -> Value {
    json!({
        "input_tokens": reply.input - reply.cached,
        "cache_read_input_tokens": reply.cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": reply.output,
    })
}

fn json_reply(dialect: Dialect, reply: &Reply) -> Value {
    let calling = !reply.tool_calls.is_empty();
    match dialect {
        Dialect::OpenAi => {
            let mut message = json!({
                "role": "assistant",
                "content": if reply.text.is_empty() { Value::Null } else { json!(reply.text) },
            });
            if calling {
                message["tool_calls"] = reply
                    .tool_calls
                    .iter()
                    .map(|(id, name, args)| {
                        json!({"id": id, "type": "function",
                               "function": {"name": name, "arguments": args.to_string()}})
                    })
                    .collect();
            }
            json!({
                "id": "chatcmpl-peer", "object": "chat.completion", "model": "peer",
                "choices": [{"index": 0, "message": message,
                             "finish_reason": if calling { "tool_calls" } else { "stop" }}],
                "usage": openai_usage(reply),
            })
        }
        Dialect::Anthropic => {
            let mut content = Vec::new();
            if !reply.text.is_empty() {
                content.push(json!({"type": "text", "text": reply.text}));
            }
            for (id, name, args) in &reply.tool_calls {
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": args}));
            }
            json!({
                "id": "msg_peer", "type": "message", "role": "assistant", "model": "peer",
                "content": content,
                "stop_reason": if calling { "tool_use" } else { "end_turn" },
                "stop_sequence": null,
                "usage": anthropic_usage(reply),
            })
        }
    }
}

/// Pieces of `text` of at most `size` characters.
fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

type Event = (Option<&'static str>, String);

fn sse_events(dialect: Dialect, reply: &Reply, include_usage: bool) -> Vec<Event> {
    match dialect {
        Dialect::OpenAi => openai_events(reply, include_usage),
        Dialect::Anthropic => anthropic_events(reply),
    }
}

fn openai_events(reply: &Reply, include_usage: bool) -> Vec<Event> {
    let chunk = |delta: Value, finish: Value| {
        (
            None,
            json!({"id": "chatcmpl-peer", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in pieces(&reply.text, 3) {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (index, (id, name, args)) in reply.tool_calls.iter().enumerate() {
        if reply.ollama_indexes {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                       "function": {"name": name, "arguments": args.to_string()}}]}),
                Value::Null,
            ));
            continue;
        }
        events.push(chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                   "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in pieces(&args.to_string(), 5) {
            events.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    let finish = if reply.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    events.push(chunk(json!({}), json!(finish)));
    if include_usage {
        events.push((
            None,
            json!({"id": "chatcmpl-peer", "choices": [], "usage": openai_usage(reply)}).to_string(),
        ));
    }
    events.push((None, "[DONE]".to_owned()));
    events
}

fn anthropic_events(reply: &Reply) -> Vec<Event> {
    let event = |name: &'static str, data: Value| (Some(name), data.to_string());
    let mut start_usage = anthropic_usage(reply);
    start_usage["output_tokens"] = json!(1);
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_peer", "type": "message", "role": "assistant", "model": "peer",
            "content": [], "stop_reason": null, "usage": start_usage}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let mut index = 0;
    if !reply.text.is_empty() {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        for piece in pieces(&reply.text, 3) {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for (id, name, args) in &reply.tool_calls {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
        for piece in pieces(&args.to_string(), 5) {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    let stop = if reply.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": reply.output}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

fn error_body(dialect: Dialect, kind: &str, message: &str) -> String {
    match dialect {
        Dialect::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
        Dialect::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
    }
    .to_string()
}

fn overflow_body(shape: OverflowShape) -> Value {
    match shape {
        OverflowShape::OpenAi => json!({"error": {
            "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        OverflowShape::Anthropic => json!({"type": "error", "error": {
            "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}),
        OverflowShape::VllmLegacy => json!({"object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).",
            "type": "BadRequestError", "param": null, "code": 400}),
        OverflowShape::LlamaCpp => json!({"error": {"code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error", "n_prompt_tokens": 9000, "n_ctx": 8192}}),
    }
}

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    headers: &[(&'static str, String)],
    body: &str,
) {
    let mut head = format!(
        "HTTP/1.1 {status} Peer\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Writes the first `send` events as a chunked SSE body, each event split across two
/// chunks; the terminating chunk only when all were sent (else the body is cut short).
async fn write_sse(socket: &mut TcpStream, events: &[Event], send: usize) {
    write_sse_head(socket).await;
    write_events(socket, &events[..send]).await;
    if send == events.len() {
        let _ = socket.write_all(b"0\r\n\r\n").await;
    }
    let _ = socket.shutdown().await;
}

async fn write_sse_head(socket: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let _ = socket.write_all(head.as_bytes()).await;
}

async fn write_events(socket: &mut TcpStream, events: &[Event]) {
    for (name, data) in events {
        let text = match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        };
        let bytes = text.as_bytes();
        for part in [&bytes[..bytes.len() / 2], &bytes[bytes.len() / 2..]] {
            let chunk = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
            if socket.write_all(&chunk).await.is_err() {
                return;
            }
            let _ = socket.flush().await;
        }
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    })
}
