//! Acceptance tests: the Tester's own HTTP suite, generated from the spec alone.
//!
//! A suite the Developer writes can only tell that the code does what the Developer thought.
//! This one is derived from the [`Spec`] the user confirmed, through the one reading of it in
//! [`api`], and speaks to the running service over HTTP — so it judges any implementation
//! (the offline agent's, an LLM's, a CLI's) by the same rules, and the Developer never sees
//! it. The Developer is given [`contract`] instead: the same rules in words.
//!
//! # The contract
//! - `GET /health` answers 200. Request and response bodies are JSON.
//! - A record is a JSON object with `id` (a string or number the service assigns; used as
//!   is in paths and references), `created_at` (RFC 3339) and every field of its resource.
//!   An optional field that was not given holds its default, or `null`.
//! - `GET /api/<plural>` → 200 and a JSON array of records. `POST /api/<plural>` → 201 and
//!   the created record. `GET /api/<plural>/<id>` → 200 and the record. `PATCH
//!   /api/<plural>/<id>` with some fields → 200 and the whole updated record, validated as a
//!   create is. `DELETE /api/<plural>/<id>` → 204 (or 200); then the record is gone. If a
//!   create's answer holds a `delete_token`, the delete sends it as `X-Delete-Token`.
//! - An id that names no record answers 404, whatever its form.
//! - Every refusal is a 4xx with `{"error": {"code": "<snake_case>", "message": "<text>"}}`,
//!   never a 5xx: a bad or missing field is 400 or 422, a reference to a record that does not
//!   exist is 400 or 422, a duplicate of a unique field is 409.
//! - Field types: see [`api::Kind`] and the limits in [`api`]; [`contract`] spells each out.
//! - A `<parent singular>_id` reference is required and must name an existing record; the
//!   children are listed at `GET /api/<parent plural>/<id>/<child plural>`. Deleting a parent
//!   that still has children is refused with 409 (the parent stays) or cascades (the
//!   children go too); never an orphan.
//! - `POST /api/<plural>/<id>/<action>` (body `{}` or none) → 200 and the record: a
//!   `set_flag` sets its boolean; a `check_in` appends today's date (UTC) to its list of
//!   dates, once a day (a second one the same day is 409, or 200 without adding). A redirect
//!   is `GET /r/<id>` → 302 with `Location` the record's URL, adding 1 to its `hits` (0 at
//!   create).
//! - `?<field>=<value>` keeps the records whose field equals the value (a list field: holds
//!   it); `?q=` keeps those whose search fields contain it, ignoring case; `?sort=<field>`
//!   sorts ascending, `?sort=-<field>` descending.
//!
//! # Running the suite
//! [`suite`] writes `acceptance_test.py` (Python 3, standard library only). Run it with
//! [`SERVICE_URL_VAR`] set to the service's base URL; it prints [`SUMMARY_PREFIX`]` ran=N
//! failures=F` last and exits 0 only when N > 0 and F = 0 ([`parse_summary`] reads the
//! line). It deletes what it creates. [`tests_ran`] reads any unittest or pytest output for
//! how many tests executed, so a project's own test command that ran none can be refused.

pub mod api;

use crate::agent::template::GeneratedFile;
use api::{Api, Field, Kind};
use artel_messages::spec::{ActionKind, Spec};
use std::fmt::Write as _;

const SUITE: &str = include_str!("../templates/acceptance/acceptance_test.py");

/// The file [`suite`] writes.
pub const SUITE_FILE: &str = "acceptance_test.py";
/// The environment variable the suite reads the service's base URL from.
pub const SERVICE_URL_VAR: &str = "ARTEL_SERVICE_URL";
/// How the suite's summary line starts.
pub const SUMMARY_PREFIX: &str = "ACCEPTANCE:";

/// The acceptance suite of `spec`: [`SUITE_FILE`], run as `python3 acceptance_test.py`. The
/// same spec always gives the same file.
pub fn suite(spec: &Spec) -> GeneratedFile {
    let api = Api::of(spec);
    let title = crate::agent::template::docstring_text(&api.title);
    GeneratedFile {
        path: SUITE_FILE.to_owned(),
        contents: SUITE.replace("__TITLE__", &title).replace(
            "__API_JSON__",
            &crate::agent::template::python_json(&api.to_json()),
        ),
    }
}

/// The command that runs [`suite`]'s file, from the directory it was written to.
pub fn suite_command() -> Vec<String> {
    vec!["python3".to_owned(), SUITE_FILE.to_owned()]
}

/// `(ran, failed)` from the suite's last summary line, or `None` when there is none (the
/// suite did not get to the end).
pub fn parse_summary(output: &str) -> Option<(u32, u32)> {
    output.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix(SUMMARY_PREFIX)?;
        let mut ran = None;
        let mut failed = None;
        for part in rest.split_whitespace() {
            match part.split_once('=') {
                Some(("ran", n)) => ran = n.parse().ok(),
                Some(("failures", n)) => failed = n.parse().ok(),
                _ => {}
            }
        }
        Some((ran?, failed?))
    })
}

/// Whether a suite run's output says it passed: a summary with at least one test and no
/// failures.
pub fn passed(output: &str) -> bool {
    parse_summary(output).is_some_and(|(ran, failed)| ran > 0 && failed == 0)
}

/// How many tests a unittest or pytest run executed (skipped ones do not count), from its
/// summary: unittest's `Ran N tests` less its `skipped=K` (every run in the output added up),
/// or pytest's final `N passed, M failed, K errors …` line (`no tests ran` is 0). `None`
/// when the output has neither: the command is not one of these, or it crashed first.
pub fn tests_ran(output: &str) -> Option<u32> {
    let mut unittest: Option<u32> = None;
    let mut skipped = 0u32;
    let mut pytest: Option<u32> = None;
    for line in output.lines().map(str::trim) {
        if let Some(n) = line
            .strip_prefix("Ran ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
            && line.contains(" test")
        {
            unittest = Some(unittest.unwrap_or(0).saturating_add(n));
        }
        if (line.starts_with("OK") || line.starts_with("FAILED"))
            && let Some(inner) = line.split_once('(').and_then(|(_, r)| r.strip_suffix(')'))
        {
            skipped = skipped.saturating_add(
                inner
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .filter(|(k, _)| k.trim() == "skipped")
                    .filter_map(|(_, v)| v.trim().parse::<u32>().ok())
                    .sum(),
            );
        }
        if let Some(count) = pytest_count(line) {
            pytest = Some(count);
        }
    }
    unittest.map(|n| n.saturating_sub(skipped)).or(pytest)
}

/// The tests a pytest summary line (`=== 3 passed, 1 failed in 0.1s ===`, `2 passed in
/// 0.01s`, `no tests ran in 0.01s`) says executed.
fn pytest_count(line: &str) -> Option<u32> {
    let line = line.trim_matches(|c: char| c == '=' || c.is_whitespace());
    let (counts, time) = line.rsplit_once(" in ")?;
    if !time.trim_end().ends_with('s') {
        return None;
    }
    if counts.trim() == "no tests ran" {
        return Some(0);
    }
    let mut ran = 0u32;
    let mut any = false;
    for part in counts.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(word), None) = (words.next(), words.next(), words.next()) else {
            return None;
        };
        let n = n.parse::<u32>().ok()?;
        match word {
            "passed" | "failed" | "error" | "errors" | "xfailed" | "xpassed" => {
                ran = ran.saturating_add(n);
            }
            "skipped" | "deselected" | "warning" | "warnings" | "rerun" => {}
            _ => return None,
        }
        any = true;
    }
    any.then_some(ran)
}

/// What each type accepts, for the contract.
fn type_rule(field: &Field) -> String {
    match field.kind {
        Kind::String => format!(
            "string: one line, at most {} characters (surrounding spaces may be trimmed)",
            api::STRING_MAX
        ),
        Kind::Text => format!("text: a string, at most {} characters", api::TEXT_MAX),
        Kind::Integer => "integer: a JSON whole number (not a string, not a boolean)".to_owned(),
        Kind::Number => "number: a JSON number (not a string, not a boolean)".to_owned(),
        Kind::Money => {
            "money: a JSON number, never negative, at most two decimal places".to_owned()
        }
        Kind::Boolean => "boolean: true or false".to_owned(),
        Kind::Date => "date: a string YYYY-MM-DD naming a real day".to_owned(),
        Kind::Datetime => {
            "datetime: an RFC 3339 date-time string with an offset, e.g. 2024-03-05T10:00:00Z"
                .to_owned()
        }
        Kind::Url => format!(
            "url: an absolute http:// or https:// URL with a host, printable ASCII, at most {} \
             characters",
            api::URL_MAX
        ),
        Kind::Email => format!(
            "email: an e-mail address (local@domain.tld), at most {} characters",
            api::EMAIL_MAX
        ),
        Kind::Enum => format!(
            "enum: exactly one of {}",
            field
                .choices
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::StringList => format!(
            "list of strings: a JSON array of at most {} one-line strings of at most {} \
             characters",
            api::LIST_MAX_ITEMS,
            api::STRING_MAX
        ),
        Kind::Reference => format!(
            "reference: the id of an existing {}",
            field.parent_singular.as_deref().unwrap_or("record")
        ),
        Kind::DateList => {
            "list of dates (YYYY-MM-DD) the service keeps: starts as [], clients cannot set it"
                .to_owned()
        }
        Kind::Counter => "integer the service keeps: starts at 0, clients cannot set it".to_owned(),
    }
}

const GENERAL_RULES: &str = "\
## Rules for every resource

- `GET /health` answers 200. Request and response bodies are JSON \
(`Content-Type: application/json`).
- A record is a JSON object with `id` (assigned by the service: a string or a number, used \
as is in paths and references), `created_at` (an RFC 3339 string) and every field below. An \
optional field that was not given holds its default, or null.
- `GET /api/<plural>` → 200 and a JSON array of the records.
- `POST /api/<plural>` → 201 and the created record, as stored.
- `GET /api/<plural>/<id>` → 200 and the record.
- `PATCH /api/<plural>/<id>` with some fields → 200 and the whole updated record. Each field \
given is validated exactly as on create; required fields cannot be set to null.
- `DELETE /api/<plural>/<id>` → 204 (or 200); afterwards the record is gone (GET → 404). If \
you hand out a `delete_token` in the create answer, require it in the `X-Delete-Token` header.
- An id that names no record answers 404, whatever its form.
- Every refusal is a 4xx with the body \
`{\"error\": {\"code\": \"<snake_case_code>\", \"message\": \"<what is wrong and what to do>\"}}`, \
never a 5xx and never a traceback:
  - a field of the wrong type or shape, or a required field missing: 400 (or 422);
  - a reference naming no existing record: 400 or 422;
  - a value of a unique field that another record already has: 409 (on create and update);
  - an unknown id: 404.
- Required `string` and `text` fields must not be empty.
- Filters, search and sort (only where listed below): `?<field>=<value>` keeps records whose \
field equals the value (numbers compare as numbers, booleans are `true`/`false`, \
date-times as instants, a list field matches when it holds the value); `?q=<text>` keeps \
records where any search field contains the text, ignoring case; `?sort=<field>` sorts \
ascending and `?sort=-<field>` descending. They combine, and work on nested lists too.
- Relations: a `<parent>_id` field is required and must name an existing parent record. \
`GET /api/<parent plural>/<parent id>/<child plural>` → 200 and the parent's children only \
(404 when the parent does not exist). Deleting a parent that still has children answers \
409 and keeps it — or deletes the children with it; never leave a child whose parent is gone.
- Actions: `POST /api/<plural>/<id>/<action>` with an empty body or `{}` → 200 and the \
updated record; 404 for an unknown id.
- The data survives a restart of the service.
";

/// The API contract of `spec`, in words, for a developer (an LLM or a person) to build to:
/// the rules the acceptance suite checks, and each resource's fields, relations, actions,
/// filters, search and sort.
pub fn contract(spec: &Spec) -> String {
    let api = Api::of(spec);
    let mut out = format!(
        "# API contract: {}\n\nBuild this JSON-over-HTTP service exactly. It is checked by an \
         acceptance suite generated from the same spec, speaking HTTP to the running \
         service; it relies on nothing that is not written here.\n\n{GENERAL_RULES}",
        api.title
    );
    for resource in &api.resources {
        let _ = write!(
            out,
            "\n## `{plural}` (one record: a `{singular}`)\n\nRoutes: `GET, POST /api/{plural}`; \
             `GET, PATCH, DELETE /api/{plural}/<id>`.\n\nFields:\n",
            plural = resource.plural,
            singular = resource.singular
        );
        for field in &resource.fields {
            let mut traits = Vec::new();
            if field.kind == Kind::Reference || !field.writable {
                // The rule says all there is.
            } else if field.required {
                traits.push("required".to_owned());
            } else if field.default.is_null() {
                traits.push("optional (null when not given)".to_owned());
            } else {
                traits.push(format!("optional, default {}", field.default));
            }
            if field.unique {
                traits.push("unique".to_owned());
            }
            let traits = if traits.is_empty() {
                String::new()
            } else {
                format!(" — {}", traits.join(", "))
            };
            let _ = writeln!(out, "- `{}`: {}{traits}", field.name, type_rule(field));
        }
        for child in &resource.children {
            let _ = writeln!(
                out,
                "- Children: `GET /api/{}/<id>/{}` lists the {} whose `{}` is this id.",
                resource.plural, child.resource, child.resource, child.field
            );
        }
        for action in &resource.actions {
            let line = match action.kind {
                ActionKind::SetFlag => format!(
                    "`POST /api/{}/<id>/{}` sets `{}` to {}.",
                    resource.plural,
                    action.name,
                    action.field,
                    action.value.unwrap_or(true)
                ),
                ActionKind::CheckIn => format!(
                    "`POST /api/{}/<id>/{}` appends today's date (UTC, YYYY-MM-DD) to `{}`, at \
                     most once a day: a second check-in the same day answers 409 (or 200 \
                     without adding it again).",
                    resource.plural, action.name, action.field
                ),
                ActionKind::Redirect => format!(
                    "`GET /r/<id>` (the id of a {}) answers 302 with `Location` set to its `{}` \
                     exactly, and adds 1 to its `hits`; an unknown id answers 404.",
                    resource.singular, action.field
                ),
            };
            let _ = writeln!(out, "- Action `{}`: {line}", action.name);
        }
        let listed = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !resource.filters.is_empty() {
            let _ = writeln!(out, "- Filters: {}.", listed(&resource.filters));
        }
        if !resource.search.is_empty() {
            let _ = writeln!(out, "- `?q=` searches: {}.", listed(&resource.search));
        }
        if !resource.sort.is_empty() {
            let _ = writeln!(out, "- `?sort=` by: {}.", listed(&resource.sort));
        }
    }
    if !api.notes.is_empty() {
        out.push_str("\n## Read from the spec with changes\n\n");
        for note in &api.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::spec::{Action, Field as SpecField, FieldType, Resource};

    fn blog() -> Spec {
        let resource = |plural: &str, singular: &str, fields: Vec<SpecField>| Resource {
            plural: plural.to_owned(),
            singular: singular.to_owned(),
            label: None,
            fields,
            belongs_to: Vec::new(),
            actions: Vec::new(),
            filters: Vec::new(),
            search: Vec::new(),
            sort: Vec::new(),
        };
        let title = SpecField {
            name: "title".to_owned(),
            ty: FieldType::String,
            required: true,
            unique: true,
            default: None,
            choices: Vec::new(),
        };
        let mut posts = resource("posts", "post", vec![title]);
        posts.actions.push(Action {
            name: "publish".to_owned(),
            kind: ActionKind::SetFlag,
            field: "published".to_owned(),
            value: None,
        });
        posts.sort = vec!["title".to_owned(), "nope".to_owned()];
        let mut comments = resource("comments", "comment", Vec::new());
        comments.belongs_to.push("post".to_owned());
        comments.filters.push("post_id".to_owned());
        Spec {
            title: "Blog".to_owned(),
            resources: vec![posts, comments],
            ..Spec::default()
        }
    }

    #[test]
    fn the_contract_names_everything_the_suite_checks() {
        let contract = contract(&blog());
        for expected in [
            "# API contract: Blog",
            "{\"error\": {\"code\"",
            "409",
            "## `posts` (one record: a `post`)",
            "- `title`: string: one line, at most 200 characters",
            "— required, unique",
            "- `published`: boolean: true or false — optional, default false",
            "Action `publish`: `POST /api/posts/<id>/publish` sets `published` to true.",
            "`GET /api/posts/<id>/comments` lists the comments whose `post_id` is this id.",
            "- `post_id`: reference: the id of an existing post",
            "- Filters: `post_id`.",
            "- `?sort=` by: `title`.",
            "## Read from the spec with changes",
            "the sort field \"nope\" names no field",
        ] {
            assert!(contract.contains(expected), "{expected:?} in:\n{contract}");
        }
    }

    #[test]
    fn the_suite_embeds_the_api_it_checks() {
        let spec = blog();
        let file = suite(&spec);
        assert_eq!(file.path, SUITE_FILE);
        assert_eq!(file, suite(&spec));
        let embedded = file
            .contents
            .split_once("API = json.loads(r'''")
            .and_then(|(_, rest)| rest.split_once("''')"))
            .map(|(json, _)| json)
            .expect("the API is embedded");
        let embedded: serde_json::Value = serde_json::from_str(embedded).expect("it is JSON");
        assert_eq!(embedded, Api::of(&spec).to_json());
        assert!(file.contents.starts_with("\"\"\"Acceptance tests of Blog,"));
    }

    #[test]
    fn summaries_are_read_from_the_last_line_that_has_one() {
        assert_eq!(
            parse_summary("noise\nACCEPTANCE: ran=12 failures=0\n"),
            Some((12, 0))
        );
        assert_eq!(
            parse_summary("ACCEPTANCE: ran=1 failures=0\nACCEPTANCE: ran=3 failures=2"),
            Some((3, 2))
        );
        assert_eq!(parse_summary("Ran 3 tests\nOK"), None);
        assert_eq!(parse_summary("ACCEPTANCE: ran=x failures=0"), None);
        assert!(passed("ACCEPTANCE: ran=4 failures=0"));
        assert!(!passed("ACCEPTANCE: ran=0 failures=0"));
        assert!(!passed("ACCEPTANCE: ran=4 failures=1"));
        assert!(!passed("Traceback (most recent call last):"));
    }

    #[test]
    fn tests_ran_counts_unittest_and_pytest_runs() {
        let cases = [
            ("test_a ... ok\n\nRan 2 tests in 0.01s\n\nOK\n", Some(2)),
            ("Ran 1 test in 0.001s\n\nOK", Some(1)),
            ("Ran 0 tests in 0.000s\n\nNO TESTS RAN", Some(0)),
            (
                "Ran 5 tests in 0.2s\n\nFAILED (failures=1, errors=1)",
                Some(5),
            ),
            ("Ran 3 tests in 0.0s\n\nOK (skipped=3)", Some(0)),
            ("Ran 2 tests in 0.1s\nOK\nRan 3 tests in 0.1s\nOK", Some(5)),
            ("==== 4 passed, 1 failed in 0.31s ====", Some(5)),
            ("2 passed, 3 skipped in 0.01s", Some(2)),
            ("=== 1 error in 0.05s ===", Some(1)),
            ("============ no tests ran in 0.01s ============", Some(0)),
            ("== 3 deselected in 0.01s ==", Some(0)),
            ("", None),
            ("all good", None),
            ("made it in 3s", None),
        ];
        for (output, expected) in cases {
            assert_eq!(tests_ran(output), expected, "{output:?}");
        }
    }
}
