//! The offline Analyst: a request in English or Russian becomes a [`Spec`] — what the service
//! must have — and a correction in words edits it.
//!
//! Deterministic: no model, the same request and corrections always give the same spec. It
//! knows the records people commonly ask services to keep ([`lexicon`]), reads what each
//! has, how they relate and which actions, filters, searches and orders are asked for
//! ([`read`]), says plainly what it could not place, and recognises requests that are not a
//! resource API at all (a bot, a converter) so they are never passed off as one. Russian
//! words are matched through the Snowball stemmer ([`russian`]).
//!
//! # Layout
//! - [`words`] — tokens with their match keys (English singular, Russian stem).
//! - [`lexicon`] — records, fields, domain phrases, out-of-range kinds.
//! - [`read`] — request → spec.
//! - [`correct`] — correction in words → the next version.
//! - [`summary`] — the spec as the user reads it.
//! - [`cases`] — the fixed list of requests and what each must produce (tests, fidelity).

pub mod cases;
pub mod correct;
pub mod lexicon;
pub mod read;
pub mod russian;
pub mod summary;
pub mod words;

use artel_messages::spec::Spec;

/// A spec after a correction, and what of the correction could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrected {
    /// The spec: its version moved on when anything changed.
    pub spec: Spec,
    /// The sentences no rule understood, in the user's words.
    pub not_applied: Vec<String>,
}

/// Reads `request` into version 1 of its spec. Never panics.
pub fn read(request: &str) -> Spec {
    read::read(request)
}

/// Applies a correction in words to `spec`.
pub fn correct(spec: &Spec, correction: &str) -> Corrected {
    correct::correct(spec, correction)
}

/// `spec` as the user reads it before confirming.
pub fn summary(spec: &Spec) -> String {
    summary::summary(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn snake_ascii(name: &str) -> bool {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    }

    fn names_are_sound(spec: &Spec) -> Result<(), TestCaseError> {
        let mut plurals = Vec::new();
        for r in &spec.resources {
            prop_assert!(snake_ascii(&r.plural) && snake_ascii(&r.singular), "{r:?}");
            prop_assert!(!plurals.contains(&r.plural), "two {}", r.plural);
            plurals.push(r.plural.clone());
            let mut names = Vec::new();
            for f in &r.fields {
                prop_assert!(snake_ascii(&f.name), "{f:?}");
                prop_assert!(!names.contains(&f.name), "two {} in {}", f.name, r.plural);
                names.push(f.name.clone());
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn reading_never_panics_and_names_are_snake_case(request in "\\PC{0,300}") {
            let spec = read(&request);
            names_are_sound(&spec)?;
            let _ = summary(&spec);
        }

        #[test]
        fn mixed_scripts_and_control_characters_are_read(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("books with author".to_owned()),
                    Just("заметки с тегами".to_owned()),
                    Just("\u{0}\t\r\n".to_owned()),
                    Just("(a, b".to_owned()),
                    Just("with with : , ;".to_owned()),
                    "[a-zа-я ]{0,20}",
                    "\\PC{0,10}",
                ],
                0..12,
            )
        ) {
            let request = parts.concat();
            let spec = read(&request);
            names_are_sound(&spec)?;
            let corrected = correct(&spec, &request);
            names_are_sound(&corrected.spec)?;
            let _ = summary(&corrected.spec);
        }

        #[test]
        fn corrections_never_panic(spec_request in "\\PC{0,80}", correction in "\\PC{0,120}") {
            let spec = read(&spec_request);
            let corrected = correct(&spec, &correction);
            names_are_sound(&corrected.spec)?;
            prop_assert!(corrected.spec.version >= spec.version);
        }
    }

    #[test]
    fn a_very_long_request_is_read() {
        let long = "books with author and isbn, ".repeat(5_000);
        let spec = read(&long);
        assert!(spec.resource("books").is_some());
    }

    #[test]
    fn every_buildable_case_compiles_into_a_service_and_a_suite() {
        for case in cases::CASES.iter().filter(|c| !c.out_of_range) {
            let spec = read(case.request);
            let api = crate::acceptance::api::Api::of(&spec);
            assert_eq!(
                api.resources.len(),
                spec.resources.len(),
                "{}: {:?}",
                case.request,
                api.notes
            );
            let files = crate::agent::spec_service::render(&spec, "x", case.request);
            assert!(files.iter().any(|f| f.path == "app.py"));
            let _ = crate::acceptance::suite(&spec);
        }
    }
}
