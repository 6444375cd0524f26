//! [`LlmClient`]: one configured provider, over the reqwest already in the tree.
//!
//! A thin client rather than a vendor SDK crate: the two dialects are small, artel needs
//! exact control over error classification, streaming assembly and key hygiene, and the SDK
//! crates on offer either pull a second reqwest or cover one vendor only. It posts a
//! [`Request`] in the configured dialect, answers with a [`Completion`] (streamed or not) and
//! turns every failure into a classified [`LlmError`]. The key goes into one header and
//! nowhere else: server text is masked before it enters an error, and nothing is logged
//! beyond the model, status and latency.

use super::conversation::{Completion, Request};
use super::error::{self, Caller, ErrorBody, LlmError};
use super::sse::SseDecoder;
use super::stream::{Delta, StreamFault};
use super::{anthropic, openai};
use crate::settings::{LlmProvider, LlmSettings};
use artel_messages::SecretValue;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// A provider endpoint and model, ready to answer.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    caller: Caller,
    provider: LlmProvider,
    url: String,
    api_key: Option<SecretValue>,
    model: String,
    max_output_tokens: u32,
    timeout: Duration,
}

impl LlmClient {
    /// The client `[llm]` configures for `caller`; fails, naming the setting, without a model.
    pub fn from_settings(settings: &LlmSettings, caller: Caller) -> Result<Self, LlmError> {
        let model = settings
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| LlmError::NotConfigured {
                role: caller.role.clone(),
                reason: format!("no model is set: set {}", caller.env("model")),
            })?;
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| LlmError::NotConfigured {
                role: caller.role.clone(),
                reason: format!("cannot build an HTTP client: {}", e.without_url()),
            })?;
        let base = settings
            .base_url
            .as_deref()
            .unwrap_or(settings.provider.default_base_url())
            .trim_end_matches('/');
        let path = match settings.provider {
            LlmProvider::Openai => openai::PATH,
            LlmProvider::Anthropic => anthropic::PATH,
        };
        Ok(Self {
            http,
            provider: settings.provider,
            url: format!("{base}{path}"),
            api_key: settings.api_key.clone().filter(|k| !k.expose().is_empty()),
            model,
            max_output_tokens: settings.max_output_tokens,
            timeout,
            caller,
        })
    }

    /// The same endpoint and model with another key: a user's own, stored with
    /// `Store::set_user_llm_key`, in place of the system key.
    pub fn with_api_key(&self, key: SecretValue) -> Self {
        Self {
            api_key: Some(key),
            ..self.clone()
        }
    }

    /// The key sent, if any (for masking it wherever text may echo it).
    pub fn api_key(&self) -> Option<&SecretValue> {
        self.api_key.as_ref()
    }

    /// The dialect spoken.
    pub fn provider(&self) -> LlmProvider {
        self.provider
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks for a whole answer at once.
    pub async fn complete(&self, request: &Request) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let response = self.send(request, false).await?;
            let body = response.bytes().await.map_err(|e| self.dropped(e))?;
            let json: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| self.bad_response(e.to_string()))?;
            match self.provider {
                LlmProvider::Openai => openai::parse_response(&json),
                LlmProvider::Anthropic => anthropic::parse_response(&json),
            }
            .map_err(|reason| self.bad_response(reason))
        })
        .await
        .unwrap_or_else(|_| Err(self.timed_out()));
        self.trace(&result, started, false);
        result
    }

    /// Asks for a streamed answer: `on_delta` sees each piece as it arrives, and the whole
    /// answer is returned at the end. The timeout bounds the wait for the first byte and
    /// every gap between chunks, not the whole answer.
    pub async fn stream(
        &self,
        request: &Request,
        mut on_delta: impl FnMut(Delta) + Send,
    ) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let result = self.stream_inner(request, &mut on_delta).await;
        self.trace(&result, started, true);
        result
    }

    async fn stream_inner(
        &self,
        request: &Request,
        on_delta: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<Completion, LlmError> {
        let response = tokio::time::timeout(self.timeout, self.send(request, true))
            .await
            .map_err(|_| self.timed_out())??;
        let mut body = response.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut openai = openai::StreamAssembler::default();
        let mut anthropic = anthropic::StreamAssembler::default();
        let mut over = false;
        while !over {
            let chunk = match tokio::time::timeout(self.timeout, body.next()).await {
                Err(_) => return Err(self.timed_out()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.dropped(e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in decoder.push(&chunk) {
                over = match self.provider {
                    LlmProvider::Openai => openai.event(&event, on_delta),
                    LlmProvider::Anthropic => anthropic.event(&event, on_delta),
                }
                .map_err(|fault| self.fault(fault))?;
                if over {
                    break;
                }
            }
        }
        if !over && let Some(event) = decoder.finish() {
            match self.provider {
                LlmProvider::Openai => openai.event(&event, on_delta),
                LlmProvider::Anthropic => anthropic.event(&event, on_delta),
            }
            .map_err(|fault| self.fault(fault))?;
        }
        match self.provider {
            LlmProvider::Openai => openai.finish(),
            LlmProvider::Anthropic => anthropic.finish(),
        }
        .map_err(|fault| self.fault(fault))
    }

    /// Posts the request; a non-success status becomes its classified error.
    async fn send(&self, request: &Request, stream: bool) -> Result<reqwest::Response, LlmError> {
        let max_tokens = request.max_output_tokens.unwrap_or(self.max_output_tokens);
        let body = match self.provider {
            LlmProvider::Openai => openai::request_body(&self.model, max_tokens, request, stream),
            LlmProvider::Anthropic => {
                anthropic::request_body(&self.model, max_tokens, request, stream)
            }
        };
        let mut post = self.http.post(&self.url).json(&body);
        if stream {
            post = post.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        post = match (self.provider, &self.api_key) {
            (LlmProvider::Openai, Some(key)) => post.bearer_auth(key.expose()),
            (LlmProvider::Anthropic, Some(key)) => post.header("x-api-key", key.expose()),
            (_, None) => post,
        };
        if self.provider == LlmProvider::Anthropic {
            post = post.header("anthropic-version", anthropic::VERSION);
        }
        let response = post.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = error::retry_after(response.headers(), chrono::Utc::now());
        let text = response.text().await.unwrap_or_default();
        let body = ErrorBody::parse(&text);
        let message = error::sanitize(&body.message, self.api_key.as_ref());
        Err(error::classify_status(
            &self.caller,
            status.as_u16(),
            retry_after,
            &body,
            message,
        ))
    }

    fn fault(&self, fault: StreamFault) -> LlmError {
        match fault {
            StreamFault::Provider { status, body } => {
                let message = error::sanitize(&body.message, self.api_key.as_ref());
                error::classify_status(&self.caller, status, None, &body, message)
            }
            StreamFault::Malformed(reason) => self.bad_response(reason),
            StreamFault::Incomplete(reason) => LlmError::StreamDropped {
                role: self.caller.role.clone(),
                reason,
            },
        }
    }

    fn transport(&self, err: reqwest::Error) -> LlmError {
        if err.is_timeout() {
            return self.timed_out();
        }
        LlmError::Unreachable {
            role: self.caller.role.clone(),
            base_url: self.url.clone(),
            reason: self.chain(err),
            base_url_env: self.caller.env("base_url"),
        }
    }

    /// The body stopped midway (or stalled past the timeout).
    fn dropped(&self, err: reqwest::Error) -> LlmError {
        if err.is_timeout() {
            return self.timed_out();
        }
        LlmError::StreamDropped {
            role: self.caller.role.clone(),
            reason: self.chain(err),
        }
    }

    /// The error and its causes, without the URL, key masked.
    fn chain(&self, err: reqwest::Error) -> String {
        let err = err.without_url();
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        error::sanitize(&reason, self.api_key.as_ref())
    }

    fn timed_out(&self) -> LlmError {
        LlmError::Timeout {
            role: self.caller.role.clone(),
            after: self.timeout,
        }
    }

    fn bad_response(&self, reason: impl Into<String>) -> LlmError {
        LlmError::BadResponse {
            role: self.caller.role.clone(),
            reason: error::sanitize(&reason.into(), self.api_key.as_ref()),
            provider_env: self.caller.env("provider"),
        }
    }

    fn trace(&self, result: &Result<Completion, LlmError>, started: Instant, stream: bool) {
        let latency_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(c) => tracing::debug!(
                role = %self.caller.role, provider = self.provider.as_str(), model = %self.model,
                stream, latency_ms, input = c.usage.input, output = c.usage.output,
                "llm answered"
            ),
            Err(e) => tracing::warn!(
                role = %self.caller.role, provider = self.provider.as_str(), model = %self.model,
                stream, latency_ms, error = %e, "llm request failed"
            ),
        }
    }
}
