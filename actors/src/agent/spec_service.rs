//! The offline agent's compiler: a [`Spec`] becomes a standard-library Python service.
//!
//! The templates in `actors/templates/spec_service/` hold one generic service and its tests;
//! what makes each project its own is the API the spec defines ([`Api::of`], the same
//! reading the Tester's acceptance suite checks), embedded as JSON:
//! - every resource under `/api/<plural>`: list, create, read, `PATCH` (partial) and `PUT`
//!   (whole) updates, delete with the signed `delete_token` the create answer carries;
//! - validation per field type, required fields, defaults, unique fields (409 on a
//!   duplicate); unknown or service-kept fields in a body are refused, never ignored;
//! - relations: a required `<parent>_id` that must name an existing parent (422
//!   `missing_parent`), nested lists at `/api/<parent>/<id>/<child>`, and deleting a parent
//!   that still has children refused with 409 `has_children` — nothing cascades, so nothing
//!   is lost by accident;
//! - actions: `set_flag` and `check_in` (once per UTC day, 409 `already_done_today` after)
//!   at `POST /api/<plural>/<id>/<action>`, and `GET /r/<id>` for a redirect, counting `hits`;
//! - `?<field>=` filters, `?q=` search and `?sort=field|-field` on every list;
//! - every resource in one JSON file (`DATA_FILE`, else `$DATA_DIR/data.json`), written
//!   atomically after each change, so the data survives a restart;
//! - bad input of any kind is a 4xx `{"error": {"code", "message"}}`, never a traceback.
//!
//! It writes the same files the template agent does — `app.py`, `test_app.py` (its own
//! unittest suite over every resource, field, relation and action), `artel.json`, a
//! `Dockerfile`, a README and a `.gitignore` — and the same spec always gives byte-identical
//! files.

use super::template::{self, GeneratedFile, docstring_text, file, python_json};
use crate::acceptance::api::{self, Api, Kind};
use artel_messages::spec::{ActionKind, Spec};
use serde_json::{Map, Value};
use std::fmt::Write as _;

const APP: &str = include_str!("../../templates/spec_service/app.py");
const TEST_APP: &str = include_str!("../../templates/spec_service/test_app.py");

/// How many sample records per resource `test_app.py` gets: four for the records a test
/// works on, one for the parents they share.
const SAMPLES: usize = 5;

/// The service `spec` defines, for the project `project_name` described (in the user's words)
/// by `description`. Environment variable names in the description ending in `_KEY`,
/// `_TOKEN` or `_SECRET` become secrets the service needs from the user, as with the
/// template agent.
pub fn render(spec: &Spec, project_name: &str, description: &str) -> Vec<GeneratedFile> {
    let api = Api::of(spec);
    let user_secrets = template::user_secrets(description);
    let (env, env_doc) = template::service_env(&user_secrets);
    let title = docstring_text(&format!("{project_name}: {description}"));
    let app = APP
        .replace("__TITLE__", &title)
        .replace("__ENV_DOC__", &env_doc)
        .replace("__API_JSON__", &python_json(&api.to_json()))
        .replace(
            "__REQUIRED_ENV_JSON__",
            &python_json(&Value::from(user_secrets.clone())),
        );
    let tests = TEST_APP
        .replace("__TITLE__", &title)
        .replace("__SAMPLES_JSON__", &python_json(&samples(&api)));
    vec![
        file("README.md", readme(spec, &api, project_name, description)),
        file(".gitignore", template::GITIGNORE.to_owned()),
        file("artel.json", template::manifest(project_name, env)),
        file("app.py", app),
        file("test_app.py", tests),
        file("Dockerfile", template::DOCKERFILE.to_owned()),
    ]
}

/// `{plural: [record body; SAMPLES]}`: good values of every writable field but references.
fn samples(api: &Api) -> Value {
    let mut out = Map::new();
    for resource in &api.resources {
        let records: Vec<Value> = (0..SAMPLES)
            .map(|n| {
                Value::Object(
                    resource
                        .fields
                        .iter()
                        .filter(|f| f.writable && f.kind != Kind::Reference)
                        .map(|f| (f.name.clone(), api::sample(f, n)))
                        .collect(),
                )
            })
            .collect();
        out.insert(resource.plural.clone(), Value::Array(records));
    }
    Value::Object(out)
}

fn readme(spec: &Spec, api: &Api, name: &str, description: &str) -> String {
    let mut out = format!(
        "# {name}\n\n{description}\n\n{} — compiled from its spec by artel's offline agent (a \
         deterministic compiler, not an LLM).\n\n## API\n\n- `GET /health`\n- Errors: a 4xx \
         status with `{{\"error\": {{\"code\": ..., \"message\": ...}}}}`.\n- Lists take \
         `?<filter>=value`, `?q=text` and `?sort=field` / `?sort=-field` where a resource \
         lists them.\n- Deleting needs the create answer's `delete_token` in the \
         `X-Delete-Token` header; a record that others still belong to cannot be deleted \
         (409): delete those first.\n",
        api.title
    );
    for resource in &api.resources {
        let p = &resource.plural;
        let _ = write!(
            out,
            "\n### {p}{}\n\n- `GET /api/{p}`, `POST /api/{p}`\n- `GET /api/{p}/<id>`, \
             `PATCH /api/{p}/<id>`, `PUT /api/{p}/<id>`, `DELETE /api/{p}/<id>`\n",
            resource
                .label
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        );
        for child in &resource.children {
            let _ = writeln!(out, "- `GET /api/{p}/<id>/{}`", child.resource);
        }
        for action in &resource.actions {
            let _ = match action.kind {
                ActionKind::Redirect => writeln!(
                    out,
                    "- `GET /r/<id>` — redirects to `{}`, counting `hits`",
                    action.field
                ),
                ActionKind::SetFlag => writeln!(
                    out,
                    "- `POST /api/{p}/<id>/{}` — sets `{}` to {}",
                    action.name,
                    action.field,
                    action.value.unwrap_or(true)
                ),
                ActionKind::CheckIn => writeln!(
                    out,
                    "- `POST /api/{p}/<id>/{}` — adds today (UTC) to `{}`, once a day",
                    action.name, action.field
                ),
            };
        }
        out.push_str("\n| field | type | |\n|---|---|---|\n");
        for field in &resource.fields {
            let mut traits = Vec::new();
            if field.required {
                traits.push("required".to_owned());
            }
            if field.unique {
                traits.push("unique".to_owned());
            }
            if !field.writable {
                traits.push("kept by the service".to_owned());
            } else if !field.default.is_null() {
                traits.push(format!("default `{}`", field.default));
            }
            if let Some(parent) = &field.parent {
                traits.push(format!("a {parent} id"));
            }
            if !field.choices.is_empty() {
                traits.push(format!("one of {}", field.choices.join(", ")));
            }
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                field.name,
                field.kind.as_str(),
                traits.join(", ")
            );
        }
        for (what, names) in [
            ("Filters", &resource.filters),
            ("Search (`?q=`)", &resource.search),
            ("Sort", &resource.sort),
        ] {
            if !names.is_empty() {
                let _ = writeln!(out, "\n{what}: {}.", names.join(", "));
            }
        }
    }
    if !spec.unplaced.is_empty() || !api.notes.is_empty() {
        out.push_str("\n## Not built as asked\n\n");
        for line in spec.unplaced.iter().chain(&api.notes) {
            let _ = writeln!(out, "- {line}");
        }
    }
    out.push_str(
        "\n## Run and test\n\n`PORT=8000 SECRET_KEY=dev python3 app.py` (data in `DATA_FILE`, \
         else `$DATA_DIR/data.json`, else `./data.json`); `python3 -m unittest -v`.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::spec::{Action, Resource};

    #[test]
    fn the_readme_says_what_was_built_and_what_was_not() {
        let resource = |plural: &str, singular: &str| Resource {
            plural: plural.to_owned(),
            singular: singular.to_owned(),
            label: None,
            fields: Vec::new(),
            belongs_to: Vec::new(),
            actions: Vec::new(),
            filters: Vec::new(),
            search: Vec::new(),
            sort: Vec::new(),
        };
        let mut links = resource("links", "link");
        links.label = Some("ссылки".to_owned());
        links.actions.push(Action {
            name: "go".to_owned(),
            kind: ActionKind::Redirect,
            field: String::new(),
            value: None,
        });
        let mut visits = resource("visits", "visit");
        visits.belongs_to = vec!["link".to_owned(), "user".to_owned()];
        let spec = Spec {
            title: "Shortener".to_owned(),
            resources: vec![links, visits],
            unplaced: vec!["a Telegram bot".to_owned()],
            ..Spec::default()
        };
        let files = render(&spec, "short", "сервис коротких ссылок");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "README.md",
                ".gitignore",
                "artel.json",
                "app.py",
                "test_app.py",
                "Dockerfile"
            ]
        );
        let readme = &files[0].contents;
        for expected in [
            "# short\n\nсервис коротких ссылок\n",
            "### links (ссылки)",
            "- `GET /r/<id>` — redirects to `url`, counting `hits`",
            "- `GET /api/links/<id>/visits`",
            "| `url` | url | required |",
            "| `hits` | counter | kept by the service |",
            "| `link_id` | reference | required, a links id |",
            "## Not built as asked\n\n- a Telegram bot\n- visits belong to \"user\"",
        ] {
            assert!(readme.contains(expected), "{expected:?} in:\n{readme}");
        }
    }
}
