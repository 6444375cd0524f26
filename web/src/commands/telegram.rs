//! `artel telegram link` and `artel telegram add-bot <token>`: the Telegram front door's
//! operations on a running server.

use crate::client::{Client, ServerArgs};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Flags of `artel telegram`.
#[derive(Debug, clap::Args)]
pub struct TelegramArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TelegramAction,
}

/// `artel telegram …`
#[derive(Debug, clap::Subcommand)]
pub enum TelegramAction {
    /// A one-time code that links a Telegram chat to your account: send the bot the command
    /// it prints (`/start <code>`) within 15 minutes.
    Link(ServerArgs),
    /// Add a bot to the pool generated services take their TELEGRAM_BOT_TOKEN from
    /// (operators).
    AddBot {
        /// The bot's token from @BotFather.
        token: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs `artel telegram …`.
pub async fn run(config: Option<PathBuf>, args: TelegramArgs) -> anyhow::Result<()> {
    let (server, path, body) = match &args.action {
        TelegramAction::Link(server) => (server, "/api/v1/telegram/links", json!({})),
        TelegramAction::AddBot { token, server } => {
            (server, "/api/v1/telegram/bots", json!({ "token": token }))
        }
    };
    let client = Client::new(config, server)?;
    let answer: Value = client.post(path, body).await?;
    if server.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    match args.action {
        TelegramAction::Link(_) => println!(
            "send this to the bot within {} minutes: {}",
            answer["expires_in_secs"].as_u64().unwrap_or(900) / 60,
            answer["command"].as_str().unwrap_or_default()
        ),
        TelegramAction::AddBot { .. } => println!(
            "bot {} (@{}) is in the pool",
            answer["bot_id"],
            answer["username"].as_str().unwrap_or_default()
        ),
    }
    Ok(())
}
