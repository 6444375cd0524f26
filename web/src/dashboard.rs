//! The dashboard at `/` (being written).

use actix_web::web;

/// The routes of this module.
pub fn routes(_config: &mut web::ServiceConfig) {}
