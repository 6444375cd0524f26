//! TEMPORARY stand-in for the offline Analyst while it is written (replaced before landing).
use artel_messages::spec::{Field, FieldType, Resource, Spec};

/// A corrected spec.
pub struct Corrected {
    /// The spec.
    pub spec: Spec,
    /// What could not be applied.
    pub not_applied: Vec<String>,
}

/// Reads a request.
pub fn read(request: &str) -> Spec {
    let field = |name: &str, ty| Field {
        name: name.into(),
        ty,
        required: false,
        unique: false,
        default: None,
        choices: vec![],
    };
    Spec {
        version: 1,
        title: request.chars().take(40).collect(),
        language: "en".into(),
        resources: vec![Resource {
            plural: "books".into(),
            singular: "book".into(),
            label: None,
            fields: vec![field("title", FieldType::String)],
            belongs_to: vec![],
            actions: vec![],
            filters: vec![],
            search: vec![],
            sort: vec![],
        }],
        unplaced: vec![],
        out_of_range: request.contains("bot").then(|| "a bot".into()),
    }
}

/// Applies a correction.
pub fn correct(spec: &Spec, correction: &str) -> Corrected {
    let mut spec = spec.clone();
    spec.version += 1;
    spec.resources[0].fields.push(Field {
        name: "due_date".into(),
        ty: FieldType::Date,
        required: false,
        unique: false,
        default: None,
        choices: vec![],
    });
    Corrected {
        spec,
        not_applied: vec![correction.into()],
    }
}

/// The spec in words.
pub fn summary(spec: &Spec) -> String {
    format!("{spec:?}")
}
