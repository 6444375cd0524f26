//! Provider keys users bring themselves: write-only, sealed like secrets.
//!
//! A user stores their own key for a provider once; the Developer's model calls for their
//! projects use it, and the system key (`[llm] api_key`) otherwise. Nothing reads a key back
//! out through the API: [`Store::user_llm_key_providers`] says which providers have one, and
//! only [`Store::reveal_user_llm_key`] (for the LLM client, on the host) opens it.

use super::secrets::Sealed;
use super::{Store, StoreError};
use crate::settings::LlmProvider;
use artel_messages::{SecretValue, UserId};

const AAD_DOMAIN: &[u8] = b"artel user llm key v1\0";

/// The associated data binding a sealed key to its user and provider.
fn associated_data(user: UserId, provider: LlmProvider) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 16 + 9);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(user.as_uuid().as_bytes());
    aad.extend_from_slice(provider.as_str().as_bytes());
    aad
}

impl Store {
    /// Stores `key` as `user`'s own key for `provider`; replaces an earlier one.
    #[tracing::instrument(skip(self, key))]
    pub async fn set_user_llm_key(
        &self,
        user: UserId,
        provider: LlmProvider,
        key: &SecretValue,
    ) -> Result<(), StoreError> {
        let text = key.expose();
        if text.trim().is_empty() || text.len() > 4096 || text.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid {
                what: "provider key",
                reason: "give the key itself: one word of at most 4096 characters".into(),
            });
        }
        let sealed =
            self.master_key()?
                .seal("provider key", &associated_data(user, provider), key)?;
        sqlx::query(
            "INSERT INTO user_llm_keys (user_id, provider, key_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, provider) DO UPDATE SET key_id = excluded.key_id, \
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = now()",
        )
        .bind(user.as_uuid())
        .bind(provider.as_str())
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The providers `user` stored a key for, sorted. Never the keys.
    pub async fn user_llm_key_providers(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT provider FROM user_llm_keys WHERE user_id = $1 ORDER BY provider",
        )
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets `user`'s key for `provider`; true if there was one.
    pub async fn delete_user_llm_key(
        &self,
        user: UserId,
        provider: LlmProvider,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM user_llm_keys WHERE user_id = $1 AND provider = $2")
            .bind(user.as_uuid())
            .bind(provider.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `user`'s own key for `provider`, if they stored one: for the LLM client only.
    #[tracing::instrument(skip(self))]
    pub async fn reveal_user_llm_key(
        &self,
        user: UserId,
        provider: LlmProvider,
    ) -> Result<Option<SecretValue>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, nonce, ciphertext FROM user_llm_keys \
             WHERE user_id = $1 AND provider = $2",
        )
        .bind(user.as_uuid())
        .bind(provider.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let name = format!("{} key of user {user}", provider.as_str());
        self.master_key()?
            .open(
                &name,
                &associated_data(user, provider),
                &Sealed::from_row(&row)?,
            )
            .map(Some)
    }
}
