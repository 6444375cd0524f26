//! The HTTP front door (actix-web) as a supervised actor: `started` binds the server on the
//! listener the app opened, `stopped` stops it gracefully, and a server that dies on its own
//! fails the actor so its supervisor restarts it.
//!
//! Routes: `/health` (alive), `/health/ready` (every dependency reachable; 503 with the
//! report otherwise, or while draining), `/metrics` (Prometheus), the REST API and its
//! WebSocket under `/api/v1` ([`crate::api`]) and the dashboard at `/` ([`crate::dashboard`]).
//!
//! Bodies over `http.max_body_bytes` get 413, malformed JSON, queries and paths get 400, an
//! unknown route 404 — all in the API's one error shape.

use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::gateways::metrics::{
    HttpCounters, render, render_streams, render_subscribers, stream_lag,
};
use actix_web::dev::{ServerHandle, Service as _};
use actix_web::error::JsonPayloadError;
use actix_web::{App, HttpResponse, HttpServer, web};
use artel_actors::health::Readiness;
use artel_actors::store::Store;
use artel_messages::{Failure, Request};
use artel_supervisors::{Actor, Context, ExitReason, Handler, Registry};
use serde_json::json;
use std::net::TcpListener;
use std::sync::Arc;

/// What handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// The REST API's state (the roles, keys, limits).
    pub api: web::Data<ApiState>,
    /// The live supervision tree.
    pub registry: Registry,
    /// Current readiness of every dependency.
    pub readiness: Readiness,
    /// The store, for the counts `/metrics` reports.
    pub store: Store,
    /// Responses served, for `/metrics`.
    pub http: Arc<HttpCounters>,
    /// Redis, when configured: `/metrics` reports the streams' consumer lag.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// The Telegram gateway, when configured: its webhook route journals updates.
    pub telegram: Option<crate::gateways::telegram::Telegram>,
}

/// The actor owning the HTTP server.
pub struct HttpGateway {
    listener: std::io::Result<TcpListener>,
    state: HttpState,
    server: Option<ServerHandle>,
}

impl HttpGateway {
    /// A gateway that will serve on `listener` (a clone of the app's, so a restart rebinds
    /// nothing and keeps the port).
    pub fn new(listener: std::io::Result<TcpListener>, state: HttpState) -> Self {
        Self {
            listener,
            state,
            server: None,
        }
    }
}

/// The server future ended.
#[derive(Debug)]
pub struct ServerExited(pub Result<(), String>);
impl Request for ServerExited {
    type Reply = ();
}

impl Actor for HttpGateway {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let listener = match &self.listener {
            Ok(listener) => listener
                .try_clone()
                .map_err(|e| Failure::retryable(format!("cannot reuse the HTTP listener: {e}")))?,
            Err(e) => return Err(Failure::fatal(format!("no HTTP listener: {e}"))),
        };
        let state = self.state.clone();
        let server = HttpServer::new(move || {
            let counters = state.http.clone();
            let limit = state.api.max_body_bytes;
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(state.api.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(limit)
                        .error_handler(move |err, _req| json_error(err, limit).into()),
                )
                .app_data(web::PayloadConfig::default().limit(limit))
                .app_data(web::QueryConfig::default().error_handler(|err, _req| {
                    ApiError::bad_request(format!("bad query string: {err}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _req| {
                    ApiError::bad_request(format!("bad path: {err}")).into()
                }))
                .wrap_fn(move |request, service| {
                    let counters = counters.clone();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        counters.record(response.status().as_u16());
                        Ok(response)
                    }
                })
                .configure(routes)
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .map_err(|e| Failure::retryable(format!("cannot serve HTTP: {e}")))?
        .run();
        self.server = Some(server.handle());
        let addr = ctx.addr();
        tokio::spawn(async move {
            let result = server.await.map_err(|e| e.to_string());
            let _ = addr.send(ServerExited(result)).await;
        });
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        if let Some(server) = self.server.take() {
            server.stop(true).await;
        }
    }
}

impl Handler<ServerExited> for HttpGateway {
    async fn handle(&mut self, msg: ServerExited, ctx: &mut Context<Self>) {
        self.server = None;
        let reason = match msg.0 {
            Ok(()) => "the HTTP server stopped on its own".to_owned(),
            Err(e) => format!("the HTTP server failed: {e}"),
        };
        ctx.fail(Failure::retryable(reason));
    }
}

/// Every route the front door serves.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/health", web::get().to(alive))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .configure(crate::gateways::telegram::webhook::routes)
        .configure(crate::api::routes)
        .configure(crate::dashboard::routes)
        .default_service(web::to(unknown_route));
}

async fn unknown_route(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::not_found(format!(
        "route `{} {}` (see /api/v1/openapi.json)",
        req.method(),
        req.path()
    ))
    .error_response()
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::too_large(limit)
        }
        JsonPayloadError::ContentType => {
            ApiError::bad_request("send the body as JSON with `Content-Type: application/json`")
        }
        JsonPayloadError::Deserialize(err) if err.is_data() => {
            ApiError::validation(format!("the body does not fit: {err}"))
        }
        other => ApiError::bad_request(format!("the body is not valid JSON: {other}")),
    }
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "artel is alive", content_type = "application/json")))]
pub async fn alive() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// Ready: every dependency answers and the server is not draining.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready, with each dependency's check", content_type = "application/json"),
        (status = 503, description = "not ready (a dependency is down) or draining", content_type = "application/json")))]
pub async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    let report = state.readiness.report();
    if state
        .api
        .draining
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        let mut body = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
        body["ready"] = json!(false);
        body["draining"] = json!(true);
        return HttpResponse::ServiceUnavailable().json(body);
    }
    if report.ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    // With the database away, the tree and readiness are still worth scraping.
    let stats = match state.store.stats().await {
        Ok(stats) => Some(stats),
        Err(err) => {
            tracing::debug!(error = %err, "metrics without database counts");
            None
        }
    };
    let mut body = render(
        &state.registry.snapshot(),
        &state.readiness.report(),
        stats.as_ref(),
        &state.http,
    );
    body.push_str(&render_subscribers(state.api.hub.subscribers()));
    if let Some(redis) = &state.redis {
        let mut redis = redis.clone();
        match tokio::time::timeout(std::time::Duration::from_secs(2), stream_lag(&mut redis)).await
        {
            Ok(Ok(lags)) => body.push_str(&render_streams(&lags)),
            Ok(Err(err)) => tracing::debug!(error = %err, "metrics without stream lag"),
            Err(_) => tracing::debug!("metrics without stream lag: Redis is slow"),
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
