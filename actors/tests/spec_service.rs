//! The offline compiler and the acceptance suite, run for real: for hand-built specs (a
//! library, a blog, a pet clinic, a habit tracker, a link shortener, an expense tracker) the
//! service is rendered into a temporary directory, its own unittest suite runs with the
//! manifest's test command, it is started the way the manifest says, and the acceptance
//! suite generated from the spec alone runs against it over HTTP — then again after a
//! restart, which must keep the data. The suite is also shown to fail: against a service of
//! a smaller spec, against a service whose validation was taken out, and when there is
//! nothing to test.

use artel_actors::acceptance::{self, api::Api};
use artel_actors::agent::manifest::Manifest;
use artel_actors::agent::spec_service;
use artel_messages::env_analyzer::EnvSource;
use artel_messages::spec::{Action, ActionKind, Field, FieldType, Resource, Spec};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

mod support;

use support::python_service::{
    PATH, TempDir, app_docstring, environment, free_port, manifest, run, write,
};

// ---- specs ------------------------------------------------------------------------------

fn field(name: &str, ty: FieldType, required: bool) -> Field {
    Field {
        name: name.to_owned(),
        ty,
        required,
        unique: false,
        default: None,
        choices: Vec::new(),
    }
}

fn unique(field: Field) -> Field {
    Field {
        unique: true,
        ..field
    }
}

fn with_default(field: Field, default: Value) -> Field {
    Field {
        default: Some(default),
        ..field
    }
}

fn choice(name: &str, choices: &[&str], required: bool) -> Field {
    Field {
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        ..field(name, FieldType::Enum, required)
    }
}

fn resource(plural: &str, singular: &str, fields: Vec<Field>) -> Resource {
    Resource {
        plural: plural.to_owned(),
        singular: singular.to_owned(),
        label: None,
        fields,
        belongs_to: Vec::new(),
        actions: Vec::new(),
        filters: Vec::new(),
        search: Vec::new(),
        sort: Vec::new(),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn action(name: &str, kind: ActionKind, field: &str, value: Option<bool>) -> Action {
    Action {
        name: name.to_owned(),
        kind,
        field: field.to_owned(),
        value,
    }
}

fn spec(title: &str, resources: Vec<Resource>) -> Spec {
    Spec {
        version: 1,
        title: title.to_owned(),
        language: "en".to_owned(),
        resources,
        unplaced: Vec::new(),
        out_of_range: None,
    }
}

fn library() -> Spec {
    spec(
        "Library catalog",
        vec![Resource {
            actions: vec![
                action("borrow", ActionKind::SetFlag, "borrowed", Some(true)),
                action("return", ActionKind::SetFlag, "borrowed", Some(false)),
            ],
            filters: names(&["author", "borrowed"]),
            search: names(&["title", "author"]),
            sort: names(&["title", "published", "pages"]),
            ..resource(
                "books",
                "book",
                vec![
                    field("title", FieldType::String, true),
                    field("author", FieldType::String, true),
                    unique(field("isbn", FieldType::String, true)),
                    field("published", FieldType::Date, false),
                    field("pages", FieldType::Integer, false),
                    with_default(field("borrowed", FieldType::Boolean, false), json!(false)),
                ],
            )
        }],
    )
}

fn blog() -> Spec {
    spec(
        "Blog",
        vec![
            Resource {
                filters: names(&["tags"]),
                search: names(&["title", "body"]),
                sort: names(&["published_at", "title"]),
                ..resource(
                    "posts",
                    "post",
                    vec![
                        field("title", FieldType::String, true),
                        field("body", FieldType::Text, true),
                        field("tags", FieldType::StringList, false),
                        field("published_at", FieldType::Datetime, false),
                    ],
                )
            },
            Resource {
                belongs_to: names(&["post"]),
                filters: names(&["post_id"]),
                search: names(&["body"]),
                sort: names(&["created_at"]),
                ..resource(
                    "comments",
                    "comment",
                    vec![
                        field("author", FieldType::String, true),
                        field("email", FieldType::Email, false),
                        field("body", FieldType::Text, true),
                    ],
                )
            },
        ],
    )
}

fn pet_clinic() -> Spec {
    spec(
        "Pet clinic",
        vec![
            Resource {
                search: names(&["name"]),
                ..resource(
                    "owners",
                    "owner",
                    vec![
                        field("name", FieldType::String, true),
                        unique(field("email", FieldType::Email, true)),
                        field("phone", FieldType::String, false),
                    ],
                )
            },
            Resource {
                belongs_to: names(&["owner"]),
                filters: names(&["species"]),
                sort: names(&["born"]),
                ..resource(
                    "pets",
                    "pet",
                    vec![
                        field("name", FieldType::String, true),
                        choice("species", &["dog", "cat", "bird", "other"], true),
                        field("born", FieldType::Date, false),
                    ],
                )
            },
            Resource {
                belongs_to: names(&["pet"]),
                actions: vec![action("pay", ActionKind::SetFlag, "paid", Some(true))],
                filters: names(&["paid", "pet_id"]),
                sort: names(&["cost", "visited_at"]),
                ..resource(
                    "visits",
                    "visit",
                    vec![
                        field("visited_at", FieldType::Datetime, true),
                        field("reason", FieldType::Text, false),
                        field("cost", FieldType::Money, false),
                    ],
                )
            },
        ],
    )
}

fn habits() -> Spec {
    spec(
        "Habit tracker",
        vec![Resource {
            actions: vec![action("check_in", ActionKind::CheckIn, "days", None)],
            filters: names(&["frequency", "days"]),
            search: names(&["name", "goal"]),
            sort: names(&["name"]),
            ..resource(
                "habits",
                "habit",
                vec![
                    unique(field("name", FieldType::String, true)),
                    field("goal", FieldType::Text, false),
                    with_default(
                        choice("frequency", &["daily", "weekly"], false),
                        json!("daily"),
                    ),
                ],
            )
        }],
    )
}

fn shortener() -> Spec {
    spec(
        "Link shortener",
        vec![Resource {
            actions: vec![action("open", ActionKind::Redirect, "url", None)],
            filters: names(&["hits"]),
            search: names(&["url", "title"]),
            sort: names(&["hits", "created_at"]),
            ..resource(
                "links",
                "link",
                vec![
                    field("url", FieldType::Url, true),
                    field("title", FieldType::String, false),
                ],
            )
        }],
    )
}

fn expenses() -> Spec {
    spec(
        "Expenses by category",
        vec![
            resource(
                "categories",
                "category",
                vec![
                    unique(field("name", FieldType::String, true)),
                    field("budget", FieldType::Money, false),
                ],
            ),
            Resource {
                belongs_to: names(&["category"]),
                filters: names(&["category_id", "spent_on", "kind"]),
                search: names(&["note"]),
                sort: names(&["amount", "spent_on"]),
                ..resource(
                    "expenses",
                    "expense",
                    vec![
                        field("amount", FieldType::Money, true),
                        field("spent_on", FieldType::Date, true),
                        field("note", FieldType::String, false),
                        field("receipt", FieldType::Url, false),
                        choice("kind", &["card", "cash"], false),
                        field("shared", FieldType::Boolean, false),
                        field("rate", FieldType::Number, false),
                    ],
                )
            },
        ],
    )
}

// ---- running what was generated -----------------------------------------------------------

/// A service started with the manifest's run command; killed when dropped.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    async fn start(dir: &Path, port: u16) -> Self {
        let manifest = manifest(dir);
        let mut child = Command::new(&manifest.run[0])
            .args(&manifest.run[1..])
            .current_dir(dir)
            .env_clear()
            .env("PATH", PATH)
            .envs(environment(dir, port, None))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the service");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the service exited before it was healthy: {status}");
            }
            if let Ok(response) = client()
                .get(format!("{base}{}", manifest.health))
                .send()
                .await
            {
                assert_eq!(response.status(), 200);
                return Self { child, base };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service never answered {}", manifest.health);
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("stop the service");
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("build a client")
}

/// Renders `spec`'s service into a new directory and checks its own suite passes.
async fn rendered(spec: &Spec) -> TempDir {
    let dir = TempDir::new();
    write(
        dir.path(),
        &spec_service::render(spec, "demo", &format!("{} from a spec", spec.title)),
    );
    let (passed, output) = run(dir.path(), &manifest(dir.path()).test, &BTreeMap::new()).await;
    assert!(
        passed,
        "the service's own suite passes for {}:\n{output}",
        spec.title
    );
    assert!(
        acceptance::tests_ran(&output).is_some_and(|n| n >= 15),
        "its tests ran:\n{output}"
    );
    dir
}

/// Runs `spec`'s acceptance suite against `base` (or with no URL at all); answers the exit
/// status, the summary and the output.
async fn accept(spec: &Spec, base: Option<&str>) -> (bool, Option<(u32, u32)>, String) {
    let dir = TempDir::new();
    write(dir.path(), &[acceptance::suite(spec)]);
    let env: BTreeMap<String, String> = base
        .map(|b| (acceptance::SERVICE_URL_VAR.to_owned(), b.to_owned()))
        .into_iter()
        .collect();
    let (passed, output) = run(dir.path(), &acceptance::suite_command(), &env).await;
    (passed, acceptance::parse_summary(&output), output)
}

/// The body of a good first record of `spec`'s first resource.
fn first_record(spec: &Spec) -> (String, Value) {
    let api = Api::of(spec);
    let resource = &api.resources[0];
    assert!(
        resource.parents.is_empty(),
        "the first resource has no parent"
    );
    let body = resource
        .fields
        .iter()
        .filter(|f| f.writable)
        .map(|f| (f.name.clone(), acceptance::api::sample(f, 7)))
        .collect();
    (resource.plural.clone(), Value::Object(body))
}

/// The whole round: the service passes its own suite and the spec's acceptance suite, keeps
/// a record over a restart, and passes the acceptance suite again after it.
async fn compiles_and_passes(spec: Spec) {
    let dir = rendered(&spec).await;
    let port = free_port();
    let service = Service::start(dir.path(), port).await;
    let (passed, summary, output) = accept(&spec, Some(&service.base)).await;
    assert!(
        passed,
        "{} passes its acceptance suite:\n{output}",
        spec.title
    );
    let (ran, failed) = summary.expect("the suite prints its summary");
    assert!(ran >= 5 && failed == 0, "{output}");
    assert_eq!(acceptance::tests_ran(&output), Some(ran), "{output}");

    let (plural, body) = first_record(&spec);
    let created: Value = client()
        .post(format!("{}/api/{plural}", service.base))
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created JSON");
    let id = created["id"].as_str().expect("an id").to_owned();
    service.stop().await;

    let service = Service::start(dir.path(), port).await;
    let read = client()
        .get(format!("{}/api/{plural}/{id}", service.base))
        .send()
        .await
        .expect("read after the restart");
    assert_eq!(read.status(), 200, "the record survived the restart");
    let read: Value = read.json().await.expect("read JSON");
    for (key, value) in body.as_object().expect("an object") {
        assert_eq!(&read[key], value, "{key} survived the restart");
    }
    let (passed, _, output) = accept(&spec, Some(&service.base)).await;
    assert!(passed, "the suite passes again after a restart:\n{output}");
}

#[tokio::test]
async fn a_library_lends_books() {
    compiles_and_passes(library()).await;
}

#[tokio::test]
async fn a_blog_keeps_comments_under_their_posts() {
    compiles_and_passes(blog()).await;
}

#[tokio::test]
async fn a_pet_clinic_nests_owners_pets_and_visits() {
    compiles_and_passes(pet_clinic()).await;
}

#[tokio::test]
async fn a_habit_tracker_checks_in_once_a_day() {
    compiles_and_passes(habits()).await;
}

#[tokio::test]
async fn a_link_shortener_redirects_and_counts() {
    compiles_and_passes(shortener()).await;
}

#[tokio::test]
async fn an_expense_tracker_validates_money_by_category() {
    compiles_and_passes(expenses()).await;
}

/// Renders `spec`'s service with `changes` (each `(from, to)`, `from` found exactly once)
/// made to its `app.py`: another implementation, right or wrong.
fn changed(spec: &Spec, changes: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new();
    let mut files = spec_service::render(spec, "demo", "changed");
    let app = files
        .iter_mut()
        .find(|f| f.path == "app.py")
        .expect("an app.py");
    for (from, to) in changes {
        assert_eq!(
            app.contents.matches(from).count(),
            1,
            "{from:?} is in app.py once"
        );
        app.contents = app.contents.replace(from, to);
    }
    write(dir.path(), &files);
    dir
}

/// Starts the service in `dir` and runs `spec`'s acceptance suite against it.
async fn accept_service(dir: &Path, spec: &Spec) -> (bool, Option<(u32, u32)>, String) {
    let service = Service::start(dir, free_port()).await;
    let result = accept(spec, Some(&service.base)).await;
    service.stop().await;
    result
}

#[tokio::test]
async fn the_suite_accepts_other_choices_the_contract_allows() {
    // No delete tokens, cascading deletes, 422 for bad fields, an idempotent second
    // check-in and date-times written back in another (equal) form.
    let changes = [
        (
            "return ApiError(400, \"invalid_field\"",
            "return ApiError(422, \"invalid_field\"",
        ),
        (
            "return 201, dict(record, delete_token=token(resource, record[\"id\"]))",
            "return 201, record",
        ),
        (
            "lambda i: hmac.compare_digest(given, token(resource, i).encode())",
            "lambda i: True",
        ),
        (
            "                if count:\n",
            "                for gone in [r[\"id\"] for r in self.data[\"resources\"][child[\"resource\"]].values() if r.get(child[\"field\"]) == record_id]:\n                    del self.data[\"resources\"][child[\"resource\"]][gone]\n                if False:\n",
        ),
        (
            "                if today in days:\n",
            "                if False:\n",
        ),
        (
            "record[field] = days + [today]",
            "record[field] = days if today in days else days + [today]",
        ),
        (
            "raise invalid(name, \"must be an RFC 3339 date-time, e.g. 2024-03-05T10:00:00Z\")\n        return value",
            "raise invalid(name, \"must be an RFC 3339 date-time, e.g. 2024-03-05T10:00:00Z\")\n        return parse_datetime(value).astimezone(UTC).isoformat()",
        ),
    ];
    for spec in [blog(), habits(), pet_clinic()] {
        let dir = changed(&spec, &changes);
        let (passed, summary, output) = accept_service(dir.path(), &spec).await;
        assert!(passed, "{} passes as changed:\n{output}", spec.title);
        assert!(summary.is_some_and(|(ran, failed)| ran > 0 && failed == 0));
    }
}

/// A change to `app.py` that breaks what the contract promises: what it breaks, in which
/// spec's service, the change, and the acceptance tests that must catch it.
type Broken = (
    &'static str,
    Spec,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[tokio::test]
async fn each_broken_promise_fails_the_suite() {
    let cases: [Broken; 8] = [
        (
            "no validation",
            expenses(),
            &[(
                "when it does not fit.\"\"\"\n",
                "when it does not fit.\"\"\"\n    return value\n",
            )],
            &[
                "test_expenses_amount_values",
                "test_expenses_spent_on_values",
                "test_expenses_receipt_values",
                "test_expenses_kind_values",
                "test_expenses_shared_values",
                "test_expenses_rate_values",
                "test_categories_budget_values",
            ],
        ),
        (
            "orphaned children",
            blog(),
            &[("                if count:\n", "                if False:\n")],
            &["test_comments_belong_to_posts"],
        ),
        (
            "duplicates allowed",
            library(),
            &[("if field[\"unique\"] and value is not None:", "if False:")],
            &["test_books_isbn_unique"],
        ),
        (
            "two check-ins a day",
            habits(),
            &[(
                "                if today in days:\n",
                "                if False:\n",
            )],
            &["test_habits_action_check_in"],
        ),
        (
            "hits not counted",
            shortener(),
            &[(
                "record[\"hits\"] = record.get(\"hits\", 0) + 1",
                "record[\"hits\"] = record.get(\"hits\", 0)",
            )],
            &["test_links_action_open"],
        ),
        (
            "filters ignored",
            library(),
            &[(
                "wanted.append((fields[key], filter_value(fields[key], value)))",
                "pass",
            )],
            &["test_books_filter_author", "test_books_filter_borrowed"],
        ),
        (
            "sort ignored",
            pet_clinic(),
            &[("    if sort is not None:\n", "    if False:\n")],
            &["test_visits_sort_cost", "test_pets_sort_born"],
        ),
        (
            "search ignored",
            blog(),
            &[("needle = value.strip().lower() or None", "needle = None")],
            &["test_posts_search_title", "test_comments_search_body"],
        ),
    ];
    for (what, spec, changes, failing) in cases {
        let dir = changed(&spec, changes);
        let (passed, summary, output) = accept_service(dir.path(), &spec).await;
        assert!(!passed, "{what}: the suite fails:\n{output}");
        let (ran, failed) = summary.expect("the suite prints its summary");
        assert!(ran > 0 && failed > 0, "{what}: {output}");
        for test in failing {
            assert!(
                output.contains(&format!("FAIL: {test} "))
                    || output.contains(&format!("ERROR: {test} ")),
                "{what}: {test} fails:\n{output}"
            );
        }
    }
}

#[tokio::test]
async fn a_suite_for_more_than_was_built_fails() {
    let built = library();
    let mut asked = library();
    let books = &mut asked.resources[0];
    books
        .fields
        .push(choice("genre", &["novel", "poetry"], true));
    books.actions.push(action(
        "reserve",
        ActionKind::SetFlag,
        "reserved",
        Some(true),
    ));
    let dir = rendered(&built).await;
    let (passed, summary, output) = accept_service(dir.path(), &asked).await;
    assert!(!passed, "{output}");
    let (ran, failed) = summary.expect("the suite prints its summary");
    assert!(ran > 0 && failed > 0, "{output}");
    for test in ["test_books_genre_values", "test_books_action_reserve"] {
        assert!(
            output.contains(&format!("FAIL: {test} "))
                || output.contains(&format!("ERROR: {test} ")),
            "{test} fails:\n{output}"
        );
    }
}

#[tokio::test]
async fn a_suite_with_nothing_to_test_fails() {
    let spec = library();
    let (passed, summary, output) = accept(&spec, None).await;
    assert!(!passed, "{output}");
    assert_eq!(summary, Some((0, 0)), "{output}");
    assert!(!acceptance::passed(&output));
    assert!(output.contains(acceptance::SERVICE_URL_VAR), "{output}");

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (passed, summary, output) = accept(&spec, Some(&nobody)).await;
    assert!(!passed, "{output}");
    let (ran, failed) = summary.expect("the suite prints its summary");
    assert!(ran > 0 && failed == ran, "{output}");
}

#[tokio::test]
async fn the_same_spec_gives_the_same_files() {
    for spec in [
        library(),
        blog(),
        pet_clinic(),
        habits(),
        shortener(),
        expenses(),
    ] {
        let once = spec_service::render(&spec, "demo", "a service");
        assert_eq!(once, spec_service::render(&spec, "demo", "a service"));
        assert_eq!(acceptance::suite(&spec), acceptance::suite(&spec));
        assert_eq!(acceptance::contract(&spec), acceptance::contract(&spec));
        let manifest = once
            .iter()
            .find(|f| f.path == "artel.json")
            .expect("a manifest");
        let manifest = Manifest::parse(&manifest.contents).expect("it parses");
        assert_eq!(manifest.run, ["python3", "app.py"]);
        let names: Vec<&str> = manifest.env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["PORT", "DATA_FILE", "SECRET_KEY"]);
        for file in once.iter().chain([&acceptance::suite(&spec)]) {
            for placeholder in ["__TITLE__", "__ENV_DOC__", "_JSON__"] {
                assert!(
                    !file.contents.contains(placeholder),
                    "{placeholder} in {}",
                    file.path
                );
            }
        }
    }
}

#[tokio::test]
async fn any_text_in_the_spec_gives_valid_python() {
    let hostile = "it's \"\"\" ''' \\ end";
    let mut notes = resource(
        "notes",
        "note",
        vec![
            with_default(field("title", FieldType::String, false), json!(hostile)),
            choice("mood", &[hostile, "calm", "ünïcödé"], true),
            field("body", FieldType::Text, false),
        ],
    );
    notes.label = Some("заметки".to_owned());
    notes.filters = names(&["mood"]);
    notes.search = names(&["title", "body"]);
    let spec = Spec {
        unplaced: vec![hostile.to_owned()],
        ..spec(hostile, vec![notes])
    };
    let dir = TempDir::new();
    let description = format!("сервис заметок {hostile}");
    write(
        dir.path(),
        &spec_service::render(&spec, "notes", &description),
    );
    let (passed, output) = run(dir.path(), &manifest(dir.path()).test, &BTreeMap::new()).await;
    assert!(passed, "{output}");
    let docstring = app_docstring(dir.path());
    assert!(
        docstring.contains(&description),
        "the description reads back unchanged: {docstring:?}"
    );
    let service = Service::start(dir.path(), free_port()).await;
    let (passed, _, output) = accept(&spec, Some(&service.base)).await;
    assert!(passed, "{output}");
}

#[tokio::test]
async fn a_secret_named_in_the_description_is_required() {
    let dir = TempDir::new();
    write(
        dir.path(),
        &spec_service::render(
            &library(),
            "library",
            "a library that needs WEATHER_API_KEY",
        ),
    );
    assert!(
        manifest(dir.path())
            .env
            .iter()
            .any(|v| v.name == "WEATHER_API_KEY" && v.source == EnvSource::User && v.required),
        "the manifest declares the user's secret"
    );
    let env = environment(dir.path(), free_port(), Some("WEATHER_API_KEY"));
    let (started, output) = run(dir.path(), &manifest(dir.path()).run, &env).await;
    assert!(!started && output.contains("WEATHER_API_KEY"), "{output}");
}
