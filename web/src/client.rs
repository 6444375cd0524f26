//! The command line's client of a running `artel up`: base URL, API key, timeouts, and
//! errors that say what to do (no server, a bad key, the API's own `{"error": …}` message).
//!
//! The key comes from `--api-key` / `ARTEL_API_KEY`, else from `<data_dir>/admin.key`, where
//! `artel up`'s first start on this machine wrote the operator key.

use anyhow::{Context as _, anyhow, bail};
use artel_messages::{Event, EventId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Flags every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The artel server (default: `http://` + the `http.listen` setting).
    #[arg(long, env = "ARTEL_SERVER")]
    pub server: Option<String>,

    /// An API key (default: `<data_dir>/admin.key`, written by `artel up`'s first start).
    #[arg(long, env = "ARTEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A connection to one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// No artel server answered at the client's base URL (refused or timed out); callers can
/// tell it apart (`downcast_ref`) to add their own hint.
#[derive(Debug)]
pub struct Unreachable {
    /// The base URL tried.
    pub base: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no artel server answers at {}: start one with `artel up` or point --server / \
             ARTEL_SERVER at it",
            self.base
        )
    }
}

impl std::error::Error for Unreachable {}

/// One page of `GET /api/v1/events`.
#[derive(Debug, serde::Deserialize)]
pub struct EventPage {
    /// The events.
    pub items: Vec<Event>,
    /// The cursor for the next page.
    pub next: EventId,
    /// The newest event in the journal.
    pub latest: EventId,
}

impl Client {
    /// A client for the server and key `args` name (or the local defaults).
    pub fn new(config: Option<PathBuf>, args: &ServerArgs) -> anyhow::Result<Self> {
        let settings = crate::commands::load_settings(config, Default::default()).ok();
        let base = match &args.server {
            Some(server) => server.trim_end_matches('/').to_owned(),
            None => format!(
                "http://{}",
                settings
                    .as_ref()
                    .map_or("127.0.0.1:8080", |s| s.http.listen.as_str())
            ),
        };
        let key = args
            .api_key
            .clone()
            .or_else(|| local_key(settings.as_ref()?));
        Ok(Self {
            base,
            key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether a server answers `/health` quickly.
    pub async fn answers(&self) -> bool {
        self.http
            .get(format!("{}/health", self.base))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// `GET path` (no key needed), as JSON, whatever the status.
    pub async fn health(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// `GET path` with the key.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body and the key.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> anyhow::Result<T> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        // Without a key the request still goes out: no server is the better news to give
        // first, and a server that wants a key says so below.
        if let Some(key) = self.key.as_deref() {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&text)
                .with_context(|| format!("{method} {path}: an answer artel cannot read"));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or(text.as_str());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            if self.key.is_none() {
                bail!(
                    "{} wants an API key: pass --api-key or set ARTEL_API_KEY (the operator \
                     key from `artel up`'s first start is in <data_dir>/admin.key)",
                    self.base
                );
            }
            bail!("the server refused the API key: {message}");
        }
        bail!("{method} {path} failed ({status}): {message}")
    }

    fn unreachable(&self, err: reqwest::Error) -> anyhow::Error {
        if err.is_connect() || err.is_timeout() {
            anyhow::Error::new(Unreachable {
                base: self.base.clone(),
            })
        } else {
            anyhow!("cannot reach {}: {err}", self.base)
        }
    }

    /// The events after `since` matching `filter` (a query fragment such as `task=<id>`), one
    /// page at a time until there are no more.
    pub async fn events(&self, filter: &str, since: EventId) -> anyhow::Result<EventPage> {
        let mut items = Vec::new();
        let mut next = since;
        loop {
            let sep = if filter.is_empty() { "" } else { "&" };
            let page: EventPage = self
                .get(&format!(
                    "/api/v1/events?{filter}{sep}since={}&limit=1000",
                    next.get()
                ))
                .await?;
            let full = page.items.len() == 1000;
            next = page.next;
            items.extend(page.items);
            if !full {
                return Ok(EventPage {
                    items,
                    next,
                    latest: page.latest,
                });
            }
        }
    }

    /// The newest event id in the journal (where "from now on" starts).
    pub async fn latest_event(&self) -> anyhow::Result<EventId> {
        let page: EventPage = self
            .get(&format!("/api/v1/events?since={}&limit=1", i64::MAX))
            .await?;
        Ok(page.latest)
    }
}

/// The operator key `artel up`'s first start on this machine wrote, if readable.
pub fn local_key(settings: &artel_actors::settings::Settings) -> Option<String> {
    let key = std::fs::read_to_string(settings.data_dir.join("admin.key")).ok()?;
    Some(key.trim().to_owned())
}

/// How often a follower asks for new events.
pub const POLL: Duration = Duration::from_millis(300);
