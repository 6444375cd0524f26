//! SecretResolver's messages: make sure every secret a deploy needs exists, and store the ones
//! users give.
//!
//! Secrets live in the store, encrypted, by project and name. The SecretResolver generates the
//! ones artel may make up, and reports the ones only the user has as missing; the deploy
//! workflow then asks the user (a `secret_requested` event) and waits. Values never leave the
//! store except into the worker or deployment that needs them.

use crate::env_analyzer::EnvVar;
use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::request::Request;
use crate::secret::SecretValue;
use serde::{Deserialize, Serialize};

/// Make sure the variables a deploy needs have values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveSecrets {
    /// The project whose secrets to check.
    pub project: ProjectId,
    /// The deploy task this step belongs to.
    pub task: TaskId,
    /// The variables, as the EnvAnalyzer found them.
    pub variables: Vec<EnvVar>,
}

impl Request for ResolveSecrets {
    type Reply = Result<SecretResolution, Failure>;
}

/// Which needed secrets exist. Names only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretResolution {
    /// Names that have a value now (found, or generated just now).
    pub resolved: Vec<String>,
    /// Names of required secrets only the user can give; the deploy waits for them.
    pub missing: Vec<String>,
}

impl SecretResolution {
    /// True when nothing is missing and the deploy can go on.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Store a secret a user gave (replacing an older value of the same name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSecret {
    /// The project it belongs to.
    pub project: ProjectId,
    /// The environment variable name.
    pub name: String,
    /// The value.
    pub value: SecretValue,
}

impl Request for StoreSecret {
    type Reply = Result<(), Failure>;
}
