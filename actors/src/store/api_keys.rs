//! API keys: how the control plane knows who is calling.
//!
//! A key is `artel_` followed by 40 lowercase hex characters (160 random bits). artel keeps
//! only its SHA-256 and its first characters (the prefix a listing shows), so a leaked
//! database leaks no usable key; the whole key is shown once, when it is created. A revoked
//! key authenticates nothing; keys are never deleted, so a listing keeps the history.

use super::rows::{get, name, time, time_opt};
use super::{Store, StoreError};
use artel_messages::dto::ApiKeyDto;
use artel_messages::{ApiKeyId, UserId, UserRole};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;

/// Every key starts with this, so a leaked one is recognizable (secret scanners, logs).
pub const KEY_PREFIX: &str = "artel_";

/// Characters of a key kept in clear, to recognize it by (`artel_` plus 6 hex).
const SHOWN_PREFIX_LEN: usize = 12;

/// A key's random part: 40 hex characters.
const SECRET_HEX_LEN: usize = 40;

/// The caller behind a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's owner.
    pub user: UserId,
    /// Their name.
    pub name: String,
    /// What they may do.
    pub role: UserRole,
    /// The key used.
    pub key: ApiKeyId,
    /// The key's clear prefix.
    pub prefix: String,
}

impl Principal {
    /// Whether this caller sees and may act on everyone's work.
    pub fn is_operator(&self) -> bool {
        self.role == UserRole::Operator
    }
}

/// A freshly created key: the listing record plus the secret, which exists nowhere else.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key as listed.
    pub record: ApiKeyDto,
    /// The whole key; show it once.
    pub secret: String,
}

/// A new random key.
pub fn generate_key() -> String {
    let token = super::secrets::random_token();
    format!("{KEY_PREFIX}{}", &token[..SECRET_HEX_LEN])
}

/// Whether `key` has the shape of an artel key (a cheap check before any database work, and
/// the validation of a key given in `ARTEL_ADMIN_KEY`).
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|hex| {
        hex.len() == SECRET_HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The stored form of a key.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

const KEY_COLUMNS: &str = "id, user_id, label, prefix, created_at, last_used_at, revoked_at";

fn key_from_row(row: &PgRow) -> Result<ApiKeyDto, StoreError> {
    Ok(ApiKeyDto {
        id: ApiKeyId::from_uuid(get(row, "id")?),
        user: UserId::from_uuid(get(row, "user_id")?),
        label: get(row, "label")?,
        prefix: get(row, "prefix")?,
        created_at: time(row, "created_at")?,
        last_used_at: time_opt(row, "last_used_at")?,
        revoked_at: time_opt(row, "revoked_at")?,
    })
}

impl Store {
    /// Creates a random key for `user`.
    #[tracing::instrument(skip(self, label))]
    pub async fn create_api_key(&self, user: UserId, label: &str) -> Result<NewApiKey, StoreError> {
        self.insert_api_key(user, label, generate_key()).await
    }

    /// Stores `secret` (well-formed, see [`is_well_formed`]) as a key of `user`: how an
    /// operator key given in the environment is installed. Storing a key that exists fails
    /// on constraint `api_keys_key_sha256_key`.
    #[tracing::instrument(skip(self, label, secret))]
    pub async fn insert_api_key(
        &self,
        user: UserId,
        label: &str,
        secret: String,
    ) -> Result<NewApiKey, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (id, user_id, label, prefix, key_sha256) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}"
        ))
        .bind(ApiKeyId::new().as_uuid())
        .bind(user.as_uuid())
        .bind(label)
        .bind(&secret[..SHOWN_PREFIX_LEN.min(secret.len())])
        .bind(key_hash(&secret).as_slice())
        .fetch_one(&self.pool)
        .await?;
        Ok(NewApiKey {
            record: key_from_row(&row)?,
            secret,
        })
    }

    /// The caller behind `secret`, if it is a live key.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, StoreError> {
        if !is_well_formed(secret) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT k.id, k.prefix, u.id AS user_id, u.name, u.role \
             FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.key_sha256 = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_hash(secret).as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Principal {
                user: UserId::from_uuid(get(&row, "user_id")?),
                name: get(&row, "name")?,
                role: name(&row, "role")?,
                key: ApiKeyId::from_uuid(get(&row, "id")?),
                prefix: get(&row, "prefix")?,
            })
        })
        .transpose()
    }

    /// Records that `key` was just used.
    pub async fn touch_api_key(&self, key: ApiKeyId) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
            .bind(key.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `user`'s keys, live ones first, newest first.
    pub async fn api_keys(&self, user: UserId) -> Result<Vec<ApiKeyDto>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 \
             ORDER BY revoked_at IS NOT NULL, created_at DESC"
        ))
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes `user`'s key `key`; `None` if `user` has no such key (someone else's is
    /// "no such key" too). Revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(
        &self,
        user: UserId,
        key: ApiKeyId,
    ) -> Result<Option<ApiKeyDto>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) \
             WHERE id = $1 AND user_id = $2 RETURNING {KEY_COLUMNS}"
        ))
        .bind(key.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Whether any operator has a live key (the first start creates one when none does).
    pub async fn operator_key_exists(&self) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE u.role = 'operator' AND k.revoked_at IS NULL) AS found",
        )
        .fetch_one(&self.pool)
        .await?;
        get(&row, "found")
    }

    /// The operator user artel's first start creates (by e-mail `admin@artel.local`).
    pub async fn ensure_admin(&self) -> Result<super::UserRecord, StoreError> {
        let user = self.ensure_user("admin", "admin@artel.local").await?;
        sqlx::query("UPDATE users SET role = 'operator' WHERE id = $1")
            .bind(user.id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(super::UserRecord {
            role: UserRole::Operator,
            ..user
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let (a, b) = (generate_key(), generate_key());
        assert!(is_well_formed(&a), "{a}");
        assert!(is_well_formed(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        for bad in [
            "",
            "artel_",
            "artel_XYZ",
            "bearer artel_0000000000000000000000000000000000000000",
            "artel_000000000000000000000000000000000000000", // 39 hex
            "artel_00000000000000000000000000000000000000000", // 41 hex
            "artel_000000000000000000000000000000000000000G",
            "ARTEL_0000000000000000000000000000000000000000",
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
