//! A project's secrets, encrypted at rest: the database never holds a plain value.
//!
//! A user gives a secret (an API key, a bot token) once; the SecretResolver stores it with
//! [`Store::set_secret`] and the Deployer reads it back with [`Store::reveal_secret`] when it
//! starts the service. Everyone else sees names only ([`Store::secret_names`]).
//!
//! Each value is sealed with XChaCha20-Poly1305 under a 32-byte [`MasterKey`], with a fresh
//! random 24-byte nonce per write and the project id plus the secret's name as associated
//! data, so a ciphertext copied to another project or name fails to open. Each row also
//! records the key's id (a truncated SHA-256 of the key, which reveals nothing useful about
//! it), so decrypting with the wrong key says so instead of just "cannot decrypt".
//!
//! The master key never comes from here: the binary's settings read `ARTEL_MASTER_KEY` (base64
//! or hex) or a key file and hand the material to [`MasterKey::parse`] or
//! [`MasterKey::from_file`]. A `MasterKey` prints as `MasterKey(***)`, a
//! [`SecretValue`] as `***`, and no function here puts either in a tracing span.

use super::rows::get;
use super::{Store, StoreError};
use artel_messages::{ProjectId, SecretValue};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// Bytes in a master key.
pub const KEY_LEN: usize = 32;

/// Bytes in a nonce.
const NONCE_LEN: usize = 24;

/// Domain separation for the key id and the associated data, versioned with the format.
const KEY_ID_DOMAIN: &[u8] = b"artel master key id v1\0";
const AAD_DOMAIN: &[u8] = b"artel secret v1\0";

/// The 32-byte key every secret is encrypted under. Never printed: `Debug` shows
/// `MasterKey(***)`.
#[derive(Clone)]
pub struct MasterKey {
    key: Key,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// 32 random bytes from the operating system as 64 hex digits: a secret artel makes up for
/// a service (a signing key, a password) when the service declares one as `generated`.
pub fn random_token() -> String {
    let bytes = XChaCha20Poly1305::generate_key(&mut OsRng);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MasterKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            key: Key::from(bytes),
            id,
        }
    }

    /// The key with these bytes, which must be exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            StoreError::BadKey(format!(
                "expected {KEY_LEN} bytes, got {} bytes",
                bytes.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random key (e.g. for `artel keygen`, or tests).
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self::from_bytes(key.into())
    }

    /// A key written as text: 64 hex digits, or base64 (standard or URL-safe, padded or not)
    /// of 32 bytes. Surrounding whitespace is ignored. Errors never repeat the text.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Self::from_slice(&decode_hex(text)?);
        }
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let decoded = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok());
        match decoded {
            Some(bytes) => Self::from_slice(&bytes),
            None => Err(StoreError::BadKey(format!(
                "expected {} hex digits or base64 of {KEY_LEN} bytes ({} characters given)",
                2 * KEY_LEN,
                text.chars().count()
            ))),
        }
    }

    /// A key read from a file holding either exactly 32 raw bytes or the key as text (see
    /// [`parse`](Self::parse)).
    pub fn from_file(path: &Path) -> Result<Self, StoreError> {
        let bytes = std::fs::read(path).map_err(|err| {
            StoreError::BadKey(format!("cannot read key file {}: {err}", path.display()))
        })?;
        if bytes.len() == KEY_LEN {
            return Self::from_slice(&bytes);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            StoreError::BadKey(format!(
                "key file {} holds neither {KEY_LEN} raw bytes nor text",
                path.display()
            ))
        })?;
        Self::parse(text)
    }

    /// The key in `path`, or, when there is no such file, a fresh key written there (32 raw
    /// bytes, mode 0600, never overwriting a file that appeared meanwhile). This is the
    /// embedded default: a key file in the data dir, so secrets survive restarts with no
    /// configuration.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if path.exists() {
            return Self::from_file(path);
        }
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::from_file(path);
            }
            Err(err) => {
                return Err(StoreError::BadKey(format!(
                    "cannot create key file {}: {err}",
                    path.display()
                )));
            }
        };
        file.write_all(key.as_slice())
            .and_then(|()| file.sync_all())
            .map_err(|err| {
                StoreError::BadKey(format!("cannot write key file {}: {err}", path.display()))
            })?;
        Ok(Self::from_bytes(key.into()))
    }

    /// The key's public id: 16 hex digits of a SHA-256 of it. Safe to log and to store.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key)
    }

    /// Encrypts `value` bound to `aad` under a fresh nonce. `what` names the value in errors.
    pub(crate) fn seal(
        &self,
        what: &'static str,
        aad: &[u8],
        value: &SecretValue,
    ) -> Result<Sealed, StoreError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose().as_bytes(),
                    aad,
                },
            )
            .map_err(|_| StoreError::Invalid {
                what,
                reason: "too long to encrypt".into(),
            })?;
        Ok(Sealed {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts what [`MasterKey::seal`] sealed with the same `aad`. `name` names the value
    /// in errors: a value sealed under another key says which key it needs.
    pub(crate) fn open(
        &self,
        name: &str,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<SecretValue, StoreError> {
        if sealed.key_id != self.id {
            return Err(StoreError::WrongMasterKey {
                name: name.to_owned(),
                stored_key_id: sealed.key_id.clone(),
                key_id: self.id.clone(),
            });
        }
        if sealed.nonce.len() != NONCE_LEN {
            return Err(StoreError::Decode {
                what: "secret nonce",
                reason: format!("expected {NONCE_LEN} bytes, got {}", sealed.nonce.len()),
            });
        }
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| StoreError::Decrypt {
                name: name.to_owned(),
            })?;
        let text = String::from_utf8(plain).map_err(|_| StoreError::Decode {
            what: "secret value",
            reason: "decrypted bytes are not UTF-8".into(),
        })?;
        Ok(SecretValue::new(text))
    }
}

/// A value encrypted at rest: the id of the key it needs, its nonce and its ciphertext, as
/// the `key_id`, `nonce` and `ciphertext` columns hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The sealed value of a row with `key_id`, `nonce` and `ciphertext` columns.
    pub(crate) fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, StoreError> {
        Ok(Self {
            key_id: get(row, "key_id")?,
            nonce: get(row, "nonce")?,
            ciphertext: get(row, "ciphertext")?,
        })
    }
}

/// Decodes an even-length string of hex digits.
fn decode_hex(text: &str) -> Result<Vec<u8>, StoreError> {
    let digit = |b: u8| -> Result<u8, StoreError> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| StoreError::BadKey("not a hex digit".into()))
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(digit(*hi)? << 4 | digit(*lo)?),
            _ => Err(StoreError::BadKey("odd number of hex digits".into())),
        })
        .collect()
}

/// The associated data binding a ciphertext to its project and name.
fn associated_data(project: ProjectId, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 16 + name.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(project.as_uuid().as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// Refuses names that are not environment variable names (they end up as one).
fn check_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "secret name",
            reason: format!(
                "`{name}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, \
                 at most 128 characters)"
            ),
        })
    }
}

impl Store {
    /// Stores `value` as `project`'s secret `name`, encrypted; replaces an earlier value.
    #[tracing::instrument(skip(self, value))]
    pub async fn set_secret(
        &self,
        project: ProjectId,
        name: &str,
        value: &SecretValue,
    ) -> Result<(), StoreError> {
        check_name(name)?;
        let sealed =
            self.master_key()?
                .seal("secret value", &associated_data(project, name), value)?;
        sqlx::query(
            "INSERT INTO secrets (id, project_id, name, key_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (project_id, name) DO UPDATE SET key_id = excluded.key_id, \
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = now()",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(project.as_uuid())
        .bind(name)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The names of `project`'s secrets, sorted. Never values.
    #[tracing::instrument(skip(self))]
    pub async fn secret_names(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        let names =
            sqlx::query_scalar("SELECT name FROM secrets WHERE project_id = $1 ORDER BY name")
                .bind(project.as_uuid())
                .fetch_all(&self.pool)
                .await?;
        Ok(names)
    }

    /// Deletes `project`'s secret `name`; true if there was one.
    #[tracing::instrument(skip(self))]
    pub async fn delete_secret(&self, project: ProjectId, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE project_id = $1 AND name = $2")
            .bind(project.as_uuid())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The plain value of `project`'s secret `name` — for the Deployer, which injects it into
    /// the service's environment, and nobody else. A wrong master key or a tampered row is a
    /// Fatal [`StoreError::WrongMasterKey`] / [`StoreError::Decrypt`].
    #[tracing::instrument(skip(self))]
    pub async fn reveal_secret(
        &self,
        project: ProjectId,
        name: &str,
    ) -> Result<SecretValue, StoreError> {
        let key = self.master_key()?;
        let row = sqlx::query(
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE project_id = $1 AND name = $2",
        )
        .bind(project.as_uuid())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "secret",
            key: name.to_owned(),
        })?;
        key.open(
            name,
            &associated_data(project, name),
            &Sealed::from_row(&row)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::{Classify, ErrorClass};

    #[test]
    fn keys_parse_from_hex_base64_and_never_print() {
        let bytes = [7u8; KEY_LEN];
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let from_hex = MasterKey::parse(&hex).unwrap();
        assert_eq!(
            from_hex.id(),
            MasterKey::parse(&format!(" {b64}\n")).unwrap().id()
        );
        assert_eq!(from_hex.id(), MasterKey::parse(&url).unwrap().id());
        assert_eq!(from_hex.id(), MasterKey::from_bytes(bytes).id());
        assert_eq!(format!("{from_hex:?}"), "MasterKey(***)");
        assert_eq!(from_hex.id().len(), 16);
        assert_ne!(from_hex.id(), MasterKey::generate().id());
    }

    #[test]
    fn bad_key_material_is_fatal_and_not_echoed() {
        for bad in ["", "too-short", &"ab".repeat(31), "zz".repeat(32).as_str()] {
            let err = MasterKey::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::BadKey(_)), "{bad}: {err}");
            assert_eq!(err.class(), ErrorClass::Fatal);
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
    }

    #[test]
    fn key_files_hold_raw_bytes_or_text() {
        let dir = std::env::temp_dir().join(format!("artel-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw");
        std::fs::write(&raw, [9u8; KEY_LEN]).unwrap();
        let text = dir.join("text");
        std::fs::write(&text, format!("{}\n", "09".repeat(KEY_LEN))).unwrap();
        assert_eq!(
            MasterKey::from_file(&raw).unwrap().id(),
            MasterKey::from_file(&text).unwrap().id()
        );
        let missing = MasterKey::from_file(&dir.join("missing")).unwrap_err();
        assert_eq!(missing.class(), ErrorClass::Fatal);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn associated_data_binds_project_and_name() {
        let key = MasterKey::generate();
        let project = ProjectId::new();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(project, "API_KEY");
        let sealed = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: b"v",
                    aad: &aad,
                },
            )
            .unwrap();
        let other = associated_data(project, "OTHER");
        assert!(
            key.cipher()
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &sealed,
                        aad: &other
                    }
                )
                .is_err()
        );
        assert!(check_name("API_KEY").is_ok() && check_name("_x1").is_ok());
        assert!(check_name("1X").is_err() && check_name("A-B").is_err() && check_name("").is_err());
    }
}
