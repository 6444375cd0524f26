//! Handled commands: what makes a redelivered stream command idempotent. The first handling
//! records its reply under the envelope's message id; a redelivery finds it and answers the
//! same reply without doing the work again.

use super::{Store, StoreError};
use artel_messages::MessageId;
use serde_json::Value;

impl Store {
    /// The reply recorded for a command already handled, if any.
    #[tracing::instrument(skip(self))]
    pub async fn handled_reply(&self, message: MessageId) -> Result<Option<Value>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT reply FROM handled_commands WHERE message_id = $1")
                .bind(message.as_uuid())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records the reply to a handled command (the first record wins).
    #[tracing::instrument(skip(self, reply))]
    pub async fn record_handled(
        &self,
        message: MessageId,
        stream: &str,
        reply: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO handled_commands (message_id, stream, reply) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message.as_uuid())
        .bind(stream)
        .bind(reply)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
