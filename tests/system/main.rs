//! artel's whole-system tests: they run the real `artel` binary (and, as the product grows,
//! real Postgres, Redis and Docker, and local protocol peers for Telegram, GitHub and LLM
//! APIs) and check what a user sees. One test binary, one module per front door.

mod api;
mod cli;
mod cli_client;
mod dashboard;
mod docker;
mod events_ws;
mod llm_agent;
mod llm_product_owner;
mod new;
mod sandbox;
mod secret_leak;
mod spec;
mod support;
mod telegram;
mod telegram_chats;
mod telegram_peer;
mod tree;
mod up;
mod worker_image;
mod worker_manager;
