//! What can go wrong talking to a provider, and whether trying again can help.
//!
//! Every failure becomes one [`LlmError`] variant, classified with [`Classify`]:
//! - **retryable**: 408, 409, 429, 5xx and 529, a timeout, a refused connection, a stream
//!   dropped midway. [`LlmError::retry_after`] carries the delay the server asked for
//!   (`retry-after-ms`, else `retry-after` in seconds or as an HTTP date) so the role's restart
//!   policy can wait that long;
//! - **fatal**: a refused key (401, 403), an exhausted quota or spend limit (even when sent as
//!   a 429), any other rejected request, a response artel cannot read, a missing setting. The
//!   message names the setting to fix (`set ARTEL_LLM__API_KEY`);
//! - [`LlmError::ContextOverflow`]: the conversation outgrew the model's window. Fatal as is
//!   (the same request fails again); the agent loop condenses its history instead.
//!
//! Vendors shape error bodies differently; [`ErrorBody::parse`] reads them all: OpenAI's and
//! Anthropic's `{"error": {...}}`, vLLM's old top-level `{"object": "error", "message": ...}`,
//! llama.cpp's `exceed_context_size_error`, Ollama's `{"error": "text"}`. Server text is
//! shortened and has the API key masked before it enters an error: a key never lands in one.

use artel_messages::{Classify, ErrorClass, SecretValue};
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The longest delay a server may ask for; anything above is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a server's error text is kept.
const MAX_MESSAGE_CHARS: usize = 500;

/// Who uses a provider and which settings configure it: named in every error so the user
/// knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The role, as users know it: `Developer`, `ProductOwner`.
    pub role: String,
    /// The environment prefix of the shared `[llm]` settings: `ARTEL_LLM`.
    pub env_prefix: String,
    /// The environment prefix of the role's own section (`ARTEL_LLM__PRODUCT_OWNER`), when
    /// it has one.
    pub role_prefix: Option<String>,
    /// The settings the role's section sets: errors about them name the role's variable.
    pub overridden: Vec<&'static str>,
}

impl Caller {
    /// A role configured by the shared `[llm]` section.
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            env_prefix: "ARTEL_LLM".to_owned(),
            role_prefix: None,
            overridden: Vec::new(),
        }
    }

    /// `role` configured by `[llm]` with its own section on top (`section` as in
    /// `[llm.product_owner]`), which sets `overridden`.
    pub fn with_section(
        role: impl Into<String>,
        section: &str,
        overridden: Vec<&'static str>,
    ) -> Self {
        let mut caller = Self::new(role);
        caller.role_prefix = Some(format!(
            "{}__{}",
            caller.env_prefix,
            section.to_ascii_uppercase()
        ));
        caller.overridden = overridden;
        caller
    }

    /// The environment variable that sets one setting for this role: the role's own
    /// (`ARTEL_LLM__PRODUCT_OWNER__API_KEY`) when its section set it, else the shared one
    /// (`ARTEL_LLM__API_KEY`).
    pub fn env(&self, setting: &str) -> String {
        let prefix = match &self.role_prefix {
            Some(own) if self.overridden.contains(&setting) => own,
            _ => &self.env_prefix,
        };
        format!("{prefix}__{}", setting.to_ascii_uppercase())
    }

    /// What to set when a setting is missing altogether: the shared variable, and the
    /// role's own for this role alone.
    pub fn env_choices(&self, setting: &str) -> String {
        let shared = format!("{}__{}", self.env_prefix, setting.to_ascii_uppercase());
        match &self.role_prefix {
            Some(own) => format!(
                "{shared} (or {own}__{} for the {} alone)",
                setting.to_ascii_uppercase(),
                self.role
            ),
            None => shared,
        }
    }
}

/// A provider call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// 429: too many requests or tokens per minute.
    #[error("the {role}'s provider is rate limiting (HTTP 429){}: {message}", wait(.retry_after))]
    RateLimited {
        /// The role.
        role: String,
        /// The server's words.
        message: String,
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
    /// 408, 409, 5xx, 529: overloaded or failing for now.
    #[error("the {role}'s provider is unavailable (HTTP {status}){}: {message}", wait(.retry_after))]
    Unavailable {
        /// The role.
        role: String,
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
    /// No answer in time.
    #[error("the {role}'s provider did not answer within {}s", .after.as_secs())]
    Timeout {
        /// The role.
        role: String,
        /// How long artel waited.
        after: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error(
        "cannot reach the {role}'s provider at {base_url} ({reason}): is it running? check {base_url_env}"
    )]
    Unreachable {
        /// The role.
        role: String,
        /// Where artel tried.
        base_url: String,
        /// What the network said.
        reason: String,
        /// The setting naming the address.
        base_url_env: String,
    },
    /// A streamed answer stopped before its end.
    #[error("the {role}'s provider dropped the stream midway: {reason}")]
    StreamDropped {
        /// The role.
        role: String,
        /// What was missing.
        reason: String,
    },
    /// 401, 403: the key is wrong, revoked or lacks access.
    #[error("the {role}'s provider refused the key (HTTP {status}: {message}): set {key_env}")]
    KeyRefused {
        /// The role.
        role: String,
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
        /// The setting holding the key.
        key_env: String,
    },
    /// The account is out of credit or over its spend limit.
    #[error(
        "the {role}'s provider account is out of credit or over its spend limit ({message}): add credit or raise the limit, or set {key_env} to another key"
    )]
    QuotaExhausted {
        /// The role.
        role: String,
        /// The server's words.
        message: String,
        /// The setting holding the key.
        key_env: String,
    },
    /// The conversation no longer fits the model's context window.
    #[error("the {role}'s conversation no longer fits the model's context window: {message}")]
    ContextOverflow {
        /// The role.
        role: String,
        /// The server's words.
        message: String,
    },
    /// Any other refusal (400, 404, 422…): the same request fails again.
    #[error(
        "the {role}'s provider rejected the request (HTTP {status}): {message}; check {model_env} and {base_url_env}"
    )]
    Rejected {
        /// The role.
        role: String,
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
        /// The setting naming the model.
        model_env: String,
        /// The setting naming the address.
        base_url_env: String,
    },
    /// The answer is not in the configured dialect.
    #[error(
        "the {role}'s provider sent an answer artel cannot read ({reason}): check that {provider_env} matches the server"
    )]
    BadResponse {
        /// The role.
        role: String,
        /// What did not parse.
        reason: String,
        /// The setting naming the dialect.
        provider_env: String,
    },
    /// A required setting is missing or wrong.
    #[error("the {role} has no usable LLM provider: {reason}")]
    NotConfigured {
        /// The role.
        role: String,
        /// What to set.
        reason: String,
    },
}

fn wait(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {}ms", d.as_millis()))
        .unwrap_or_default()
}

impl Classify for LlmError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimited { .. }
            | Self::Unavailable { .. }
            | Self::Timeout { .. }
            | Self::Unreachable { .. }
            | Self::StreamDropped { .. } => ErrorClass::Retryable,
            Self::KeyRefused { .. }
            | Self::QuotaExhausted { .. }
            | Self::ContextOverflow { .. }
            | Self::Rejected { .. }
            | Self::BadResponse { .. }
            | Self::NotConfigured { .. } => ErrorClass::Fatal,
        }
    }

    fn retry_delay(&self) -> Option<Duration> {
        LlmError::retry_after(self)
    }
}

impl LlmError {
    /// The delay the server asked for before the next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The `llm_requests.status` this failure is recorded with.
    pub fn request_status(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            _ => "error",
        }
    }
}

/// An error body in any vendor's shape, reduced to what classification needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The human-readable message (or the raw body when it is not JSON).
    pub message: String,
    /// The vendor's error type (`invalid_request_error`, `exceed_context_size_error`…).
    pub kind: String,
    /// The vendor's code (`context_length_exceeded`, `insufficient_quota`…), as text.
    pub code: String,
}

impl ErrorBody {
    /// Reads an error body of any known shape; unknown shapes keep the raw text.
    pub fn parse(body: &str) -> Self {
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(json) => Self::from_json(&json).unwrap_or_else(|| Self::raw(body)),
            Err(_) => Self::raw(body),
        }
    }

    /// Reads a parsed error object (also used for errors sent inside a stream).
    pub fn from_json(json: &serde_json::Value) -> Option<Self> {
        let text = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        match json.get("error") {
            // OpenAI, Anthropic (inside `{"type": "error"}`), llama.cpp, vLLM today, LiteLLM.
            Some(inner @ serde_json::Value::Object(_)) => Some(Self {
                message: text(inner.get("message")),
                kind: text(inner.get("type")),
                code: text(inner.get("code")),
            }),
            // Ollama's native shape.
            Some(serde_json::Value::String(message)) => Some(Self {
                message: message.clone(),
                ..Self::default()
            }),
            // vLLM's old top-level shape: `{"object": "error", "message": ...}`.
            _ if json.get("message").is_some() => Some(Self {
                message: text(json.get("message")),
                kind: text(json.get("type")),
                code: text(json.get("code")),
            }),
            _ => None,
        }
    }

    fn raw(body: &str) -> Self {
        Self {
            message: body.trim().to_owned(),
            ..Self::default()
        }
    }

    /// Whether this says the prompt outgrew the context window, in any vendor's words.
    pub fn is_context_overflow(&self) -> bool {
        let message = self.message.to_ascii_lowercase();
        self.code == "context_length_exceeded"
            || self.kind == "exceed_context_size_error"
            || [
                "prompt is too long",
                "maximum context length",
                "context_length_exceeded",
                "exceeds the available context size",
                "exceed context limit",
                "context window",
            ]
            .iter()
            .any(|needle| message.contains(needle))
    }

    /// Whether this says the account is out of credit or over a spend limit.
    pub fn is_quota_exhausted(&self) -> bool {
        let message = self.message.to_ascii_lowercase();
        matches!(
            self.code.as_str(),
            "insufficient_quota" | "billing_hard_limit_reached" | "billing_not_active"
        ) || self.kind == "insufficient_quota"
            || [
                "credit balance is too low",
                "exceeded your current quota",
                "spend limit",
                "spending limit",
                "usage limits",
            ]
            .iter()
            .any(|needle| message.contains(needle))
    }
}

/// Masks the key and shortens server text before it goes into an error.
pub fn sanitize(text: &str, api_key: Option<&SecretValue>) -> String {
    let mut text = text.trim().to_owned();
    if let Some(key) = api_key.map(SecretValue::expose).filter(|k| !k.is_empty()) {
        text = text.replace(key, "***");
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        text = text.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
    }
    if text.is_empty() {
        text = "no details given".to_owned();
    }
    text
}

/// The error an unsuccessful HTTP response means. `message` is already sanitized.
pub fn classify_status(
    caller: &Caller,
    status: u16,
    retry_after: Option<Duration>,
    body: &ErrorBody,
    message: String,
) -> LlmError {
    let role = caller.role.clone();
    if body.is_context_overflow() {
        return LlmError::ContextOverflow { role, message };
    }
    if body.is_quota_exhausted() {
        return LlmError::QuotaExhausted {
            role,
            message,
            key_env: caller.env("api_key"),
        };
    }
    match status {
        401 | 403 => LlmError::KeyRefused {
            role,
            status,
            message,
            key_env: caller.env("api_key"),
        },
        429 => LlmError::RateLimited {
            role,
            message,
            retry_after,
        },
        408 | 409 | 500..=599 => LlmError::Unavailable {
            role,
            status,
            message,
            retry_after,
        },
        _ => LlmError::Rejected {
            role,
            status,
            message,
            model_env: caller.env("model"),
            base_url_env: caller.env("base_url"),
        },
    }
}

/// The delay a response asks for: `retry-after-ms` (milliseconds), else `retry-after`
/// (seconds, or an HTTP date measured from `now`). Capped at an hour.
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        ms / 1000.0
    } else {
        let value = header("retry-after")?;
        match value.parse::<f64>() {
            Ok(seconds) => seconds,
            Err(_) => {
                let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
                (at.with_timezone(&chrono::Utc) - now).num_milliseconds() as f64 / 1000.0
            }
        }
    };
    if seconds.is_nan() {
        return None;
    }
    Duration::try_from_secs_f64(seconds.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn caller() -> Caller {
        Caller::new("Developer")
    }

    fn classify(status: u16, body: &str) -> LlmError {
        let parsed = ErrorBody::parse(body);
        let message = sanitize(&parsed.message, None);
        classify_status(&caller(), status, None, &parsed, message)
    }

    #[test]
    fn statuses_are_classified() {
        for status in [408, 409, 429, 500, 502, 503, 529] {
            let err = classify(status, r#"{"error":{"message":"busy"}}"#);
            assert_eq!(err.class(), ErrorClass::Retryable, "{status}: {err}");
        }
        for status in [400, 401, 403, 404, 422] {
            let err = classify(status, r#"{"error":{"message":"no"}}"#);
            assert_eq!(err.class(), ErrorClass::Fatal, "{status}: {err}");
        }
        assert!(matches!(
            classify(429, "slow down"),
            LlmError::RateLimited { .. }
        ));
    }

    #[test]
    fn a_refused_key_names_the_setting_to_fix() {
        let err = classify(401, r#"{"error":{"message":"Incorrect API key provided"}}"#);
        assert_eq!(
            err.to_string(),
            "the Developer's provider refused the key (HTTP 401: Incorrect API key provided): \
             set ARTEL_LLM__API_KEY"
        );
    }

    #[test]
    fn exhausted_quota_is_fatal_even_as_a_429() {
        let openai = classify(
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert!(
            matches!(openai, LlmError::QuotaExhausted { .. }),
            "{openai}"
        );
        assert_eq!(openai.class(), ErrorClass::Fatal);
        let anthropic = classify(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
        );
        assert!(
            matches!(anthropic, LlmError::QuotaExhausted { .. }),
            "{anthropic}"
        );
        assert!(anthropic.to_string().contains("ARTEL_LLM__API_KEY"));
    }

    #[test]
    fn context_overflow_is_recognised_in_every_vendor_shape() {
        for body in [
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}"#,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":8192}}"#,
        ] {
            let err = classify(400, body);
            assert!(
                matches!(err, LlmError::ContextOverflow { .. }),
                "{body}: {err}"
            );
        }
    }

    #[test]
    fn unknown_bodies_keep_their_text_and_ollama_strings_are_read() {
        assert_eq!(
            ErrorBody::parse("<html>bad gateway</html>").message,
            "<html>bad gateway</html>"
        );
        assert_eq!(
            ErrorBody::parse(r#"{"error":"model \"x\" not found"}"#).message,
            "model \"x\" not found"
        );
        assert_eq!(ErrorBody::parse(r#"{"error":{"code":400}}"#).code, "400");
    }

    #[test]
    fn the_key_is_masked_and_long_text_cut() {
        let key = SecretValue::new("sk-secret-123");
        assert_eq!(
            sanitize("bad key sk-secret-123!", Some(&key)),
            "bad key ***!"
        );
        assert_eq!(
            sanitize(&"x".repeat(2000), None).chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
        assert_eq!(sanitize("  ", None), "no details given");
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T07:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Wed, 02 Dec 2026 07:00:30 GMT")]),
                now
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Wed, 02 Dec 2026 06:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1e30")]), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }
}
