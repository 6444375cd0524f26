//! The health check every deploy target runs: `GET url + path` until a 2xx answer, the
//! timeout, or the service's exit — whichever comes first. Targets differ only in where the
//! service runs and where its last log lines come from, so the polling lives here once.

use super::ServiceExit;
use std::time::Duration;
use tokio::sync::watch;

/// How often a health check asks again.
const POLL: Duration = Duration::from_millis(200);
/// How long one health request may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a health check came to.
#[derive(Debug)]
pub(super) enum Verdict {
    /// It answered 2xx with this status.
    Healthy(u16),
    /// The service ended before answering; the detail names the URL asked.
    Exited(String),
    /// No 2xx within the timeout; the last status seen, if any, and a sentence.
    TimedOut(Option<u16>, String),
}

/// The HTTP client health checks use: no proxy (services are on artel's own hosts), a
/// short per-request timeout.
pub(super) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
}

/// Polls `GET url + path` until it answers 2xx, `timeout` passes, or `exit` reports that
/// the service ended (`None`: nothing to watch).
pub(super) async fn poll(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    timeout: Duration,
    mut exit: Option<watch::Receiver<Option<ServiceExit>>>,
) -> Verdict {
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_code = None;
    let mut last: String;
    loop {
        if let Some(end) = exit.as_ref().and_then(|rx| *rx.borrow()) {
            return Verdict::Exited(format!("the service {end} before answering {target}"));
        }
        match http.get(&target).send().await {
            Ok(response) if response.status().is_success() => {
                return Verdict::Healthy(response.status().as_u16());
            }
            Ok(response) => {
                last_code = Some(response.status().as_u16());
                last = format!("HTTP {}", response.status());
            }
            Err(err) => last = error_chain(&err),
        }
        if tokio::time::Instant::now() >= deadline {
            return Verdict::TimedOut(
                last_code,
                format!(
                    "no 2xx answer from {target} within {}s (last: {last})",
                    timeout.as_secs_f32()
                ),
            );
        }
        let exited = async {
            match exit.as_mut() {
                Some(rx) => drop(rx.wait_for(Option::is_some).await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = exited => {}
        }
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `detail`, followed by the service's last log lines when there are any.
pub(super) fn with_tail(detail: String, source: &str, tail: &str) -> String {
    if tail.is_empty() {
        detail
    } else {
        format!("{detail}\n--- last lines of {source} ---\n{tail}")
    }
}
