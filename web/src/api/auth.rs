//! Who is calling: the [`Caller`] extractor every `/api/v1` handler takes.
//!
//! A request carries `Authorization: Bearer artel_…` (a WebSocket upgrade may instead carry
//! `?access_token=`, since browsers cannot set headers on one). The key is checked against
//! the store — through a short-lived in-process cache, so a busy client costs one hash and
//! one map lookup, not one query, per request — then spends a token of its rate limit.
//!
//! A key the store does not know is remembered as unknown, and each client address has a
//! budget of unknown keys (see [`BadKeys`]).
//!
//! Revocation through this server evicts the key at once; another `artel up` on the same
//! database notices within [`CACHE_TTL`].

use crate::api::ApiState;
use crate::api::bad_keys::BadKeys;
use crate::api::error::ApiError;
use crate::api::rate_limit::Decision;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use artel_actors::store::Principal;
use artel_actors::store::api_keys::key_hash;
use artel_messages::{ApiKeyId, ProjectId, UserId};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// How long a checked key is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// The caller's user id.
    pub fn user(&self) -> UserId {
        self.0.user
    }

    /// Whether the caller sees everyone's work.
    pub fn is_operator(&self) -> bool {
        self.0.is_operator()
    }

    /// Refuses callers who are not operators.
    pub fn require_operator(&self, what: &str) -> Result<(), ApiError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} is for operators; ask an operator for an operator key"
            )))
        }
    }

    /// The owner to scope a project query to: the caller, or anyone for an operator.
    pub fn scope(&self) -> Option<UserId> {
        (!self.is_operator()).then_some(self.user())
    }
}

/// Checked keys by hash.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Principal> {
        let entries = self.entries.read();
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| principal.clone())
    }

    fn put(&self, hash: [u8; 32], principal: Principal) {
        let mut entries = self.entries.write();
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    /// Forgets `key` (it was just revoked).
    pub fn evict(&self, key: ApiKeyId) {
        self.entries.write().retain(|_, (p, _)| p.key != key);
    }
}

/// The key a request presents, if any.
fn presented_key(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, key) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim().to_owned());
    }
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return None;
    }
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()?
        .get("access_token")
        .cloned()
}

/// Authenticates `req` and spends one token of its key's rate limit.
pub async fn authenticate(state: &ApiState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let key = presented_key(req).ok_or_else(|| {
        ApiError::unauthorized(
            "send an API key as `Authorization: Bearer artel_…`; the first start of `artel up` \
             prints an operator key and writes it to <data_dir>/admin.key",
        )
    })?;
    let hash = key_hash(&key);
    let principal = match state.keys.get(&hash) {
        Some(principal) => principal,
        None => {
            let address = req.peer_addr().map(|a| a.ip());
            let store = &state.store;
            let principal =
                check_uncached(&state.bad_keys, &hash, address, || store.authenticate(&key))
                    .await?;
            let (store, id) = (state.store.clone(), principal.key);
            tokio::spawn(async move {
                if let Err(err) = store.touch_api_key(id).await {
                    tracing::debug!(error = %err, "cannot record a key's last use");
                }
            });
            state.keys.put(hash, principal.clone());
            principal
        }
    };
    match state.limiter.check(principal.key).await {
        Decision::Allow => Ok(Caller(principal)),
        Decision::Deny { retry_after } => Err(ApiError::rate_limited(whole_secs(retry_after))),
    }
}

/// Checks a key the positive cache does not hold: a key the store did not know lately is
/// refused without asking it again, and an address that presented too many unknown keys gets
/// 429 before the store is asked (see [`BadKeys`]).
async fn check_uncached<F, Fut, E>(
    bad: &BadKeys,
    hash: &[u8; 32],
    address: Option<IpAddr>,
    lookup: F,
) -> Result<Principal, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<Principal>, E>>,
    ApiError: From<E>,
{
    let unknown = || {
        ApiError::unauthorized(
            "this API key is unknown or revoked; create a new one with POST /api/v1/keys \
             using a valid key, or ask an operator",
        )
    };
    let refuse = |decision: Decision| match decision {
        Decision::Allow => unknown(),
        Decision::Deny { retry_after } => ApiError::too_many_bad_keys(whole_secs(retry_after)),
    };
    let now = Instant::now();
    if bad.known_bad(hash, now) {
        return Err(address.map_or_else(unknown, |a| refuse(bad.charge(a, now))));
    }
    if let Some(address) = address
        && let Decision::Deny { retry_after } = bad.admit(address, now)
    {
        return Err(ApiError::too_many_bad_keys(whole_secs(retry_after)));
    }
    match lookup().await? {
        Some(principal) => Ok(principal),
        None => {
            bad.remember(*hash, now);
            Err(address.map_or_else(unknown, |a| refuse(bad.charge(a, now))))
        }
    }
}

/// A wait in whole seconds, rounded up (`Retry-After` has no fractions).
fn whole_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<ApiState>>()
                .ok_or_else(|| ApiError::internal("the API state is not registered"))?;
            authenticate(state, &req).await
        })
    }
}

/// Whether `caller` may see project `project` owned by `owner`.
pub fn may_see(caller: &Caller, owner: UserId) -> bool {
    caller.is_operator() || caller.user() == owner
}

/// A project reference from a path: its id, or the caller's project name.
pub enum ProjectRef {
    /// By id.
    Id(ProjectId),
    /// By name (within the caller's projects).
    Name(String),
}

impl ProjectRef {
    /// Parses a path segment.
    pub fn parse(segment: &str) -> Self {
        match segment.parse() {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Name(segment.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    /// A store lookup that counts its calls and knows no key.
    async fn never_known(calls: &std::cell::Cell<u32>) -> Result<Option<Principal>, ApiError> {
        calls.set(calls.get() + 1);
        Ok(None)
    }

    #[tokio::test]
    async fn an_unknown_key_costs_one_lookup_then_is_refused_from_memory() {
        let bad = BadKeys::default();
        let calls = std::cell::Cell::new(0);
        let address: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..5 {
            let err = check_uncached(&bad, &[7; 32], Some(address), || never_known(&calls))
                .await
                .expect_err("unknown");
            assert_eq!(
                actix_web::ResponseError::status_code(&err),
                actix_web::http::StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(calls.get(), 1, "the store is asked once");
    }

    #[tokio::test]
    async fn an_address_guessing_keys_gets_429_before_the_store_is_asked() {
        let bad = BadKeys::new(Duration::from_secs(30), 100, Duration::from_secs(60), 3);
        let calls = std::cell::Cell::new(0);
        let address: IpAddr = [127, 0, 0, 9].into();
        let mut statuses = Vec::new();
        for n in 0..6u8 {
            let err = check_uncached(&bad, &[n; 32], Some(address), || never_known(&calls))
                .await
                .expect_err("unknown");
            statuses.push(actix_web::ResponseError::status_code(&err).as_u16());
        }
        assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
        assert_eq!(calls.get(), 3, "no lookups once the budget is spent");
        let other = check_uncached(&bad, &[9; 32], Some([127, 0, 0, 10].into()), || {
            never_known(&calls)
        })
        .await
        .expect_err("unknown");
        assert_eq!(
            actix_web::ResponseError::status_code(&other).as_u16(),
            401,
            "another address has its own budget"
        );
    }

    #[test]
    fn a_bearer_header_is_the_key() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer  artel_abc "))
            .to_http_request();
        assert_eq!(presented_key(&req).as_deref(), Some("artel_abc"));
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "bearer artel_abc"))
            .to_http_request();
        assert_eq!(presented_key(&req).as_deref(), Some("artel_abc"));
    }

    #[test]
    fn other_schemes_and_missing_headers_present_nothing() {
        for value in ["Basic dXNlcjpwYXNz", "artel_abc", ""] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert_eq!(presented_key(&req), None, "{value:?}");
        }
        assert_eq!(
            presented_key(&TestRequest::default().to_http_request()),
            None
        );
    }

    #[test]
    fn a_query_token_counts_only_on_a_websocket_upgrade() {
        let plain = TestRequest::with_uri("/api/v1/me?access_token=artel_abc").to_http_request();
        assert_eq!(presented_key(&plain), None, "keys in URLs end up in logs");
        let upgrade = TestRequest::with_uri("/api/v1/events/ws?access_token=artel_abc")
            .insert_header((header::UPGRADE, "websocket"))
            .to_http_request();
        assert_eq!(presented_key(&upgrade).as_deref(), Some("artel_abc"));
    }
}
