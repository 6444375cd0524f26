//! Analyst: writes the spec of an engineering task's request — what the service must have —
//! before anything is built, and edits it when the user corrects it.
//!
//! Offline it is [`crate::analyst`]'s deterministic reader: the same request (and the same
//! corrections) always give the same spec. A correction that changes nothing leaves the
//! version as it was, and what could not be applied is answered in the user's words, so it
//! still reaches the Developer as guidance and the user hears that it was not placed.

use crate::analyst;
use artel_messages::spec::{SpecWritten, WriteSpec};

/// Handles a [`WriteSpec`]: version 1 from the request, or the current spec with the
/// correction applied.
pub fn write(msg: WriteSpec) -> SpecWritten {
    let current = msg.current.unwrap_or_else(|| analyst::read(&msg.request));
    match msg.correction.as_deref().map(str::trim) {
        Some(correction) if !correction.is_empty() => {
            let corrected = analyst::correct(&current, correction);
            SpecWritten {
                spec: corrected.spec,
                not_applied: corrected.not_applied,
            }
        }
        _ => SpecWritten {
            spec: current,
            not_applied: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::{ProjectId, TaskId};

    fn msg(current: Option<artel_messages::spec::Spec>, correction: Option<&str>) -> WriteSpec {
        WriteSpec {
            project: ProjectId::new(),
            task: TaskId::new(),
            request: "a library catalog with books with author and isbn".into(),
            current,
            correction: correction.map(str::to_owned),
        }
    }

    #[test]
    fn the_first_spec_comes_from_the_request_and_a_correction_makes_the_next_version() {
        let first = write(msg(None, None));
        assert_eq!(first.spec.version, 1);
        assert!(first.spec.resource("books").is_some(), "{:?}", first.spec);
        let again = write(msg(Some(first.spec.clone()), Some("   ")));
        assert_eq!(again.spec, first.spec, "a blank correction changes nothing");
        let second = write(msg(Some(first.spec.clone()), Some("add a due date")));
        assert_eq!(second.spec.version, 2);
        let books = second.spec.resource("books").expect("books stay");
        assert!(books.field("due_date").is_some(), "{books:?}");
    }
}
