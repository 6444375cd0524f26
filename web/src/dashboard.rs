//! The dashboard at `/`: one HTML page, a stylesheet and a script, compiled into the binary
//! (no CDN, no build step). It uses only the public API — `/api/v1` with the user's key and
//! the event WebSocket — so everything it shows, a script can do too.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use actix_web::{HttpResponse, web};

const INDEX: &str = include_str!("../assets/index.html");
const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");

/// Same-origin only: no inline script, no third-party anything.
const POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                      frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route(
            "/",
            web::get().to(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/assets/dashboard.css",
            web::get().to(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/dashboard.js",
            web::get().to(|| async { asset("text/javascript; charset=utf-8", JS) }),
        );
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
