//! The project manifest, `artel.json`: how artel tests, runs and health-checks a project,
//! and which environment it needs.
//!
//! artel reads it instead of guessing: the Tester runs `test`, the Deployer runs `run` and
//! checks `health`, the EnvAnalyzer reads `env`. It is parsed strictly — an unknown field or
//! a bad value is refused with what to fix, because a typo here would otherwise surface as
//! a mysterious failed deploy.

use artel_messages::env_analyzer::{EnvSource, EnvVar};
use artel_messages::{Classify, ErrorClass};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// `artel.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The project's name.
    pub name: String,
    /// The command that serves it (program and arguments; no shell).
    pub run: Vec<String>,
    /// The command that runs its tests.
    pub test: Vec<String>,
    /// The path that answers 2xx when it is healthy.
    pub health: String,
    /// The environment variables it reads.
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// Why a manifest was refused. Fatal: a manifest does not fix itself.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("artel.json is malformed: {0}")]
    Malformed(String),
    /// A field has a value artel cannot use.
    #[error("artel.json: {field} {problem}")]
    Invalid {
        /// Which field.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

impl Classify for ManifestError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

impl Manifest {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let invalid = |field: &str, problem: &str| ManifestError::Invalid {
            field: field.to_owned(),
            problem: problem.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty: name the project"));
        }
        for (field, command) in [("run", &self.run), ("test", &self.test)] {
            if command.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(invalid(
                    field,
                    "must name a program, e.g. [\"python3\", \"app.py\"]",
                ));
            }
        }
        if !self.health.starts_with('/')
            || self
                .health
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "health",
                "must be a path starting with `/`, without spaces, e.g. \"/health\"",
            ));
        }
        let mut seen = BTreeSet::new();
        for var in &self.env {
            let valid = var
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && var
                    .name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(invalid(
                    &format!("env {:?}", var.name),
                    "is not an environment variable name (A-Z, 0-9, _)",
                ));
            }
            if !seen.insert(var.name.as_str()) {
                return Err(invalid(&format!("env {:?}", var.name), "is declared twice"));
            }
        }
        Ok(())
    }

    /// The manifest as artel writes it.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// A variable the deploy target provides.
    pub fn target_var(name: &str, description: &str) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            source: EnvSource::Target,
            required: true,
            description: description.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"name": "x", "run": ["python3", "app.py"],
        "test": ["python3", "-m", "unittest"], "health": "/health",
        "env": [{"name": "PORT", "source": "target", "required": true, "description": "p"}]}"#;

    #[test]
    fn a_good_manifest_round_trips() {
        let manifest = Manifest::parse(GOOD).unwrap();
        assert_eq!(manifest.run, ["python3", "app.py"]);
        assert_eq!(
            Manifest::parse(&manifest.to_json_pretty()).unwrap(),
            manifest
        );
    }

    #[test]
    fn mistakes_are_refused_with_what_to_fix() {
        let cases = [
            (GOOD.replace("\"name\"", "\"nmae\""), "unknown field"),
            (
                GOOD.replace("[\"python3\", \"app.py\"]", "[]"),
                "run must name a program",
            ),
            (
                GOOD.replace("\"/health\"", "\"health\""),
                "health must be a path",
            ),
            (
                GOOD.replace("\"PORT\"", "\"port\""),
                "not an environment variable name",
            ),
            ("not json".to_owned(), "malformed"),
            (GOOD.replace("\"x\"", "\" \""), "name must not be empty"),
            (
                GOOD.replace("\"/health\"", "\"/he alth\""),
                "health must be a path",
            ),
            (
                GOOD.replace("\"PORT\"", "\"9PORT\""),
                "not an environment variable name",
            ),
            (GOOD.replace("\"target\"", "\"somewhere\""), "malformed"),
            (
                GOOD.replace(
                    "\"test\": [\"python3\", \"-m\", \"unittest\"]",
                    "\"test\": [\" \"]",
                ),
                "test must name a program",
            ),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(&text).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} for {text}");
            assert_eq!(err.class(), ErrorClass::Fatal);
        }
        let twice = GOOD.replace(
            "\"description\": \"p\"}]",
            "\"description\": \"p\"}, {\"name\": \"PORT\", \"source\": \"target\", \"required\": true, \"description\": \"q\"}]",
        );
        assert!(
            Manifest::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
