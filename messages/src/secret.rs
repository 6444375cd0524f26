//! Secret values: carried once, from the chat to the secret store, and printed never.
//!
//! A user gives a secret (an API key, a bot token) in the chat; the ProductOwner recognizes it,
//! and the SecretResolver stores it. On that one path the value must travel — possibly through
//! a stream between processes — so [`SecretValue`] serializes as the plain string. Everywhere
//! else secrets are referred to by *name*: events carry `secret_requested { name }`, worker
//! specs list secret names that the worker-manager reads from the store, and `Debug`/`Display`
//! print `***`, so a value never lands in a log, an event or a tree snapshot by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret's plain value. Prints as `***`; serializes as the value (see the module docs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a plain value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one place that stores or injects it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_but_carried_on_the_wire() {
        let secret = SecretValue::new("sk-live-123");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(
            format!("{:?}", Some(&secret)),
            "Some(***)",
            "nested Debug stays redacted"
        );
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, r#""sk-live-123""#);
        let back: SecretValue = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), "sk-live-123");
    }
}
