//! SecretResolver: makes sure every secret a deploy needs has a value.
//!
//! `generated` secrets are made up once (32 random bytes) and kept, encrypted, so a
//! redeploy gets the same value; `user` secrets are looked up and, when missing and
//! required, reported — the deploy then waits for the user, durably, in `needs_human`, and a
//! `secret_requested` event tells the session to ask. Values never leave the store here:
//! the resolution carries names only. `TELEGRAM_BOT_TOKEN` comes from the pool of Telegram
//! bots while it has a free one.

use super::Crew;
use crate::store::secrets::random_token;
use artel_messages::env_analyzer::EnvSource;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::secret_resolver::{ResolveSecrets, SecretResolution, StoreSecret};
use artel_messages::{Classify, Failure, SecretValue};

/// The variable a deploy fills from the pool of Telegram bots (`telegram_bots`); with the
/// pool empty, the user is asked for it like any `user` secret.
pub const POOLED_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";

/// Handles a [`ResolveSecrets`].
pub async fn resolve(crew: &Crew, msg: ResolveSecrets) -> Result<SecretResolution, Failure> {
    let store = &crew.store;
    let have = store
        .secret_names(msg.project)
        .await
        .map_err(|e| e.to_failure())?;
    let mut resolution = SecretResolution {
        resolved: Vec::new(),
        missing: Vec::new(),
    };
    for var in &msg.variables {
        let present = have.contains(&var.name);
        match var.source {
            EnvSource::Target => continue,
            EnvSource::Generated if !present => {
                store
                    .set_secret(msg.project, &var.name, &SecretValue::new(random_token()))
                    .await
                    .map_err(|e| e.to_failure())?;
            }
            // A service that needs a bot gets one from the pool while the pool has one.
            EnvSource::User if !present && var.name == POOLED_BOT_TOKEN => {
                match store
                    .allocate_telegram_bot(msg.project)
                    .await
                    .map_err(|e| e.to_failure())?
                {
                    Some((_bot, token)) => store
                        .set_secret(msg.project, &var.name, &token)
                        .await
                        .map_err(|e| e.to_failure())?,
                    None if var.required => {
                        resolution.missing.push(var.name.clone());
                        continue;
                    }
                    None => continue,
                }
            }
            EnvSource::User if !present && var.required => {
                resolution.missing.push(var.name.clone());
                continue;
            }
            EnvSource::User if !present => continue,
            _ => {}
        }
        resolution.resolved.push(var.name.clone());
    }
    for name in &resolution.missing {
        store
            .append_event(
                NewEvent::new(EventBody::SecretRequested { name: name.clone() })
                    .project(msg.project)
                    .task(msg.task),
            )
            .await
            .map_err(|e| e.to_failure())?;
    }
    Ok(resolution)
}

/// Handles a [`StoreSecret`] a user gave.
pub async fn store_secret(crew: &Crew, msg: StoreSecret) -> Result<(), Failure> {
    crew.store
        .set_secret(msg.project, &msg.name, &msg.value)
        .await
        .map(drop)
        .map_err(|e| e.to_failure())
}
