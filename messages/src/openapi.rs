//! JSON schemas (OpenAPI 3.1) for the catalog's types, so the control plane's OpenAPI
//! document is generated from the very types it serializes (feature `openapi`).
//!
//! Structs derive `utoipa::ToSchema`; the types whose wire form is hand-made (ids, names,
//! timestamps, events) get their schema here, next to the rule that shapes them.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{RefOr, schema::AdditionalProperties};

/// A UUID string.
pub fn uuid_schema(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uuid".to_owned())))
        .description(Some(description))
        .into()
}

/// One of a closed set of snake_case names.
pub fn names_schema(what: &str, names: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .description(Some(format!("A {what}.")))
        .into()
}

/// A journal position.
pub fn event_id_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(
            "An event's position in the journal; ids grow with append order.",
        ))
        .into()
}

/// An RFC 3339 UTC time.
pub fn timestamp_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339, UTC, e.g. 2026-11-23T19:51:07.123456Z."))
        .into()
}

/// A journal event: its envelope fields, its `kind` and a kind-specific `payload` object.
pub fn event_schema() -> RefOr<Schema> {
    let any_object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some("Kind-specific fields; see messages/src/event.rs."));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("id", event_id_schema())
        .required("id")
        .property("project", nullable_uuid("The project it concerns, if any."))
        .property("task", nullable_uuid("The task it concerns, if any."))
        .property("at", timestamp_schema())
        .required("at")
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z][a-z0-9_]{0,63}$")),
        )
        .required("kind")
        .property("payload", any_object)
        .description(Some("One entry of the append-only event journal."))
        .into()
}

fn nullable_uuid(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::Custom("uuid".to_owned())))
        .description(Some(description))
}
