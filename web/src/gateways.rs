//! Front doors. Each is a supervised actor: it parses, authorizes, sends one message and maps
//! the reply — no business logic.

pub mod http;
pub mod metrics;
pub mod telegram;
