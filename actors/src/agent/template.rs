//! The `template` agent: a deterministic generator, not an LLM.
//!
//! It reads the request for what the service is about and picks a resource — links (a URL
//! shortener with redirects and hit counts), todo items, notes, bookmarks, or a generic item
//! — then fills the templates shipped in `actors/templates/python_service/`: a
//! standard-library Python 3 HTTP service with a JSON API (list, create, read, update,
//! delete with a signed delete token), strict input validation, persistence to a JSON file
//! written atomically, and a `unittest` suite that exercises all of it. Environment variable
//! names in the request that end in `_KEY`, `_TOKEN` or `_SECRET` become secrets only the
//! user can give: the service refuses to start without them, and the deploy asks for them.
//!
//! The same request always gives byte-identical files.

use super::manifest::Manifest;
use artel_messages::env_analyzer::{EnvSource, EnvVar};
use serde_json::{Value, json};

const APP: &str = include_str!("../../templates/python_service/app.py");
const TEST_APP: &str = include_str!("../../templates/python_service/test_app.py");
const SKELETON_APP: &str = include_str!("../../templates/python_service/skeleton_app.py");
const SKELETON_TEST: &str = include_str!("../../templates/python_service/skeleton_test_app.py");
/// The image recipe the Docker deploy target builds; the local target ignores it.
pub(crate) const DOCKERFILE: &str = include_str!("../../templates/python_service/Dockerfile");

/// One file the generator writes, by path relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Where it goes.
    pub path: String,
    /// What it holds.
    pub contents: String,
}

/// A field of the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its JSON name.
    pub name: &'static str,
    /// `string`, `boolean`, `integer` or `object`.
    pub kind: &'static str,
    /// Must a create body have it?
    pub required: bool,
    /// Its value when a create body leaves it out.
    pub default: Option<Value>,
    /// `url` for a field that must be an http(s) URL.
    pub format: Option<&'static str>,
    /// A value the generated tests create items with.
    pub sample: Value,
}

/// What the service keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Plural, used in paths: `/api/<name>`.
    pub name: &'static str,
    /// Singular, used in messages.
    pub singular: &'static str,
    /// A title for the README and the index.
    pub title: &'static str,
    /// Its fields.
    pub fields: Vec<Field>,
    /// The field `GET /r/<id>` redirects to, for a shortener.
    pub redirect: Option<&'static str>,
}

/// What the generator decided from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blueprint {
    /// The resource the service serves.
    pub resource: Resource,
    /// Environment variables only the user can give, named in the request.
    pub user_secrets: Vec<String>,
}

fn field(name: &'static str, kind: &'static str, required: bool, sample: Value) -> Field {
    Field {
        name,
        kind,
        required,
        default: None,
        format: None,
        sample,
    }
}

/// Words that point at a resource, and how to make it.
type Keywords = (&'static [&'static str], fn() -> Resource);

/// The words that point at each resource, best guess first when two are mentioned at the
/// same place. A one-word keyword matches the start of a word (`shorten` in "shortener",
/// `note` in "notes"); a phrase matches anywhere.
const KEYWORDS: &[Keywords] = &[
    (
        &[
            "shorten",
            "short link",
            "short url",
            "url",
            "link",
            "сокращ",
            "ссылк",
        ],
        links,
    ),
    (
        &[
            "todo",
            "to-do",
            "to do",
            "task",
            "checklist",
            "задач",
            "список дел",
        ],
        todos,
    ),
    (
        &["note", "memo", "journal", "diary", "замет", "дневник"],
        notes,
    ),
    (&["bookmark", "закладк"], bookmarks),
];

/// The resource whose keyword the request mentions first: the subject of a request comes
/// before its details ("a todo list where tasks can hold a link" is a todo list).
fn resource_for(request: &str) -> Resource {
    let text = request.to_lowercase();
    let words = words(&text);
    KEYWORDS
        .iter()
        .filter_map(|(keywords, make)| {
            keywords
                .iter()
                .filter_map(|k| first_mention(&text, &words, k))
                .min()
                .map(|at| (at, make))
        })
        .min_by_key(|(at, _)| *at)
        .map_or_else(items, |(_, make)| make())
}

/// The words of `text` (runs of letters and digits) with their byte offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Where `keyword` is first mentioned in `text`, if it is.
fn first_mention(text: &str, words: &[(usize, &str)], keyword: &str) -> Option<usize> {
    if keyword.contains([' ', '-']) {
        return text.find(keyword);
    }
    words
        .iter()
        .find(|(_, word)| word.starts_with(keyword))
        .map(|(at, _)| *at)
}

fn links() -> Resource {
    Resource {
        name: "links",
        singular: "link",
        title: "Link shortener",
        fields: vec![Field {
            format: Some("url"),
            ..field("url", "string", true, json!("https://example.com/artel"))
        }],
        redirect: Some("url"),
    }
}

fn todos() -> Resource {
    Resource {
        name: "todos",
        singular: "todo",
        title: "Todo list",
        fields: vec![
            field("title", "string", true, json!("buy milk")),
            Field {
                default: Some(json!(false)),
                ..field("done", "boolean", false, json!(false))
            },
        ],
        redirect: None,
    }
}

fn notes() -> Resource {
    Resource {
        name: "notes",
        singular: "note",
        title: "Notes",
        fields: vec![
            field("title", "string", true, json!("hello")),
            Field {
                default: Some(json!("")),
                ..field("body", "string", false, json!("written by a test"))
            },
        ],
        redirect: None,
    }
}

fn bookmarks() -> Resource {
    Resource {
        name: "bookmarks",
        singular: "bookmark",
        title: "Bookmarks",
        fields: vec![
            Field {
                format: Some("url"),
                ..field("url", "string", true, json!("https://example.com/"))
            },
            Field {
                default: Some(json!("")),
                ..field("title", "string", false, json!("Example"))
            },
        ],
        redirect: None,
    }
}

fn items() -> Resource {
    Resource {
        name: "items",
        singular: "item",
        title: "Items",
        fields: vec![
            field("name", "string", true, json!("first")),
            Field {
                default: Some(json!({})),
                ..field("data", "object", false, json!({"any": "thing"}))
            },
        ],
        redirect: None,
    }
}

/// Names like `WEATHER_API_KEY` in the request: secrets only the user has.
pub(crate) fn user_secrets(request: &str) -> Vec<String> {
    let mut names: Vec<String> = request
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.len() > 4
                && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && ["_KEY", "_TOKEN", "_SECRET"].iter().any(|s| w.ends_with(s))
                && !matches!(*w, "SECRET_KEY")
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What to build for `request`.
pub fn blueprint(request: &str) -> Blueprint {
    Blueprint {
        resource: resource_for(request),
        user_secrets: user_secrets(request),
    }
}

/// Words that say nothing about what a project is.
const FILLER: &[&str] = &[
    "a", "an", "the", "with", "me", "make", "build", "create", "please", "api", "rest", "simple",
    "service", "that", "and", "for", "my", "i", "need", "want", "to", "of", "small", "json",
    "http", "web", "app", "needs", "using", "uses", "which", "new", "some", "it",
];

/// The longest name [`project_name`] gives, leaving room for a `-2` when it is taken.
const MAX_NAME: usize = 40;

/// A project name for `request`: lowercase words joined by `-`, filler dropped, at most 40
/// characters, `service` when nothing is left. Always matches `^[a-z0-9][a-z0-9-]{0,39}$`.
pub fn project_name(request: &str) -> String {
    let secrets = user_secrets(request);
    let words: Vec<String> = request
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !secrets.iter().any(|s| s == w))
        .flat_map(|w| w.split('_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .filter(|w| !FILLER.contains(&w.as_str()))
        .collect();
    let mut name = String::new();
    for word in words {
        if name.is_empty() && word.len() > MAX_NAME {
            name = word[..MAX_NAME].to_owned();
            break;
        }
        if name.len() + word.len() + 1 > MAX_NAME {
            break;
        }
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(&word);
    }
    if name.is_empty() {
        "service".to_owned()
    } else {
        name
    }
}

fn base_env() -> Vec<EnvVar> {
    vec![
        Manifest::target_var("PORT", "TCP port the service listens on"),
        Manifest::target_var("DATA_FILE", "JSON file the service keeps its data in"),
    ]
}

pub(crate) fn manifest(name: &str, env: Vec<EnvVar>) -> String {
    Manifest {
        name: name.to_owned(),
        run: vec!["python3".into(), "app.py".into()],
        test: vec![
            "python3".into(),
            "-m".into(),
            "unittest".into(),
            "discover".into(),
            "-v".into(),
        ],
        health: "/health".into(),
        env,
    }
    .to_json_pretty()
}

pub(crate) const GITIGNORE: &str = "__pycache__/\n*.pyc\ndata.json\ndata.json.tmp\n";

/// What the Scaffolder commits first: a runnable skeleton that answers `/health`, its test,
/// the manifest, a README and a `.gitignore`.
pub fn scaffold_files(name: &str, description: &str) -> Vec<GeneratedFile> {
    let title = format!("{name}: {description}");
    vec![
        file(
            "README.md",
            format!(
                "# {name}\n\n{description}\n\nScaffolded by artel. Run it with \
                 `PORT=8000 python3 app.py`; test it with `python3 -m unittest -v`.\n"
            ),
        ),
        file(".gitignore", GITIGNORE.to_owned()),
        file("artel.json", manifest(name, base_env())),
        file(
            "app.py",
            SKELETON_APP.replace("__TITLE__", &docstring_text(&title)),
        ),
        file("test_app.py", SKELETON_TEST.to_owned()),
        file("Dockerfile", DOCKERFILE.to_owned()),
    ]
}

/// `text` made safe inside a Python `"""` docstring: a quote or backslash from the request
/// can neither end it nor start an escape, and control characters (which Python source
/// must not hold) become spaces.
pub(crate) fn docstring_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that can sit inside a Python `r'''…'''` literal. JSON has `'` only
/// inside strings, where `\u0027` means the same thing and cannot end the literal.
pub(crate) fn python_json(value: &Value) -> String {
    value.to_string().replace('\'', "\\u0027")
}

pub(crate) fn file(path: &str, contents: String) -> GeneratedFile {
    GeneratedFile {
        path: path.to_owned(),
        contents,
    }
}

/// The environment a rendered service reads — the target's `PORT` and `DATA_FILE`, a
/// generated `SECRET_KEY` for its delete tokens, and `user_secrets` — and the lines that
/// document it in the service's docstring.
pub(crate) fn service_env(user_secrets: &[String]) -> (Vec<EnvVar>, String) {
    let mut env = base_env();
    env.push(EnvVar {
        name: "SECRET_KEY".into(),
        source: EnvSource::Generated,
        required: true,
        description: "signs the delete tokens the API hands out".into(),
    });
    let mut env_doc =
        String::from("  SECRET_KEY  signs delete tokens (required; artel generates it)");
    for secret in user_secrets {
        env.push(EnvVar {
            name: secret.clone(),
            source: EnvSource::User,
            required: true,
            description: format!("{secret}, named in the request; only you have it"),
        });
        env_doc.push_str(&format!("\n  {secret}  required; only the user has it"));
    }
    (env, env_doc)
}

/// What the template agent writes as the Developer: the service, its tests, its manifest
/// and its README.
pub fn render(blueprint: &Blueprint, name: &str, description: &str) -> Vec<GeneratedFile> {
    let resource = &blueprint.resource;
    let fields: Vec<Value> = resource
        .fields
        .iter()
        .map(|f| {
            let mut spec = json!({"name": f.name, "type": f.kind, "required": f.required});
            if let Some(default) = &f.default {
                spec["default"] = default.clone();
            }
            if let Some(format) = f.format {
                spec["format"] = json!(format);
            }
            spec
        })
        .collect();
    let config = json!({
        "plural": resource.name,
        "singular": resource.singular,
        "title": format!("{} ({name})", resource.title),
        "fields": fields,
        "redirect": resource.redirect,
    });
    let sample: serde_json::Map<String, Value> = resource
        .fields
        .iter()
        .map(|f| (f.name.to_owned(), f.sample.clone()))
        .collect();
    let (env, env_doc) = service_env(&blueprint.user_secrets);
    let title = docstring_text(&format!("{name}: {description}"));
    let app = APP
        .replace("__TITLE__", &title)
        .replace("__ENV_DOC__", &env_doc)
        .replace("__RESOURCE_JSON__", &python_json(&config))
        .replace(
            "__REQUIRED_ENV_JSON__",
            &python_json(&json!(blueprint.user_secrets)),
        );
    let tests = TEST_APP
        .replace("__TITLE__", &title)
        .replace("__SAMPLE_JSON__", &python_json(&Value::Object(sample)));
    let mut readme = format!(
        "# {name}\n\n{description}\n\nA {} API written by artel's template agent \
         (a deterministic generator, not an LLM).\n\n## API\n\n\
         - `GET /health`\n- `GET /api/{plural}` — list\n- `POST /api/{plural}` — create \
         (answers the item and its `delete_token`)\n- `GET /api/{plural}/<id>`\n\
         - `PATCH /api/{plural}/<id>`\n- `DELETE /api/{plural}/<id>` with header \
         `X-Delete-Token`\n",
        resource.singular,
        plural = resource.name
    );
    if resource.redirect.is_some() {
        readme.push_str("- `GET /r/<id>` — redirects to the link's URL and counts the hit\n");
    }
    readme.push_str(
        "\n## Run and test\n\n`PORT=8000 SECRET_KEY=dev python3 app.py`; \
         `python3 -m unittest -v`.\n",
    );
    vec![
        file("README.md", readme),
        file(".gitignore", GITIGNORE.to_owned()),
        file("artel.json", manifest(name, env)),
        file("app.py", app),
        file("test_app.py", tests),
        file("Dockerfile", DOCKERFILE.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_choose_their_resource() {
        let cases = [
            ("A URL shortener with a REST API", "links"),
            ("make me a todo list API", "todos"),
            ("build a notes service", "notes"),
            ("сделай сервис заметок", "notes"),
            ("a bookmark manager", "bookmarks"),
            ("a guestbook service", "items"),
            ("a todo list where each task can hold a link", "todos"),
            ("a bookmark manager that stores urls", "bookmarks"),
            ("a service that shortens URLs", "links"),
            ("a journal of my days", "notes"),
            ("a curling club roster", "items"),
        ];
        for (request, resource) in cases {
            assert_eq!(blueprint(request).resource.name, resource, "{request}");
        }
        assert_eq!(
            blueprint("A URL shortener with a REST API")
                .resource
                .redirect,
            Some("url")
        );
    }

    #[test]
    fn secrets_named_in_the_request_are_the_users() {
        let b =
            blueprint("a notes service that needs WEATHER_API_KEY and BOT_TOKEN, not SECRET_KEY");
        assert_eq!(b.user_secrets, ["BOT_TOKEN", "WEATHER_API_KEY"]);
        assert!(blueprint("a todo list").user_secrets.is_empty());
    }

    #[test]
    fn project_names_are_short_slugs() {
        assert_eq!(
            project_name("A URL shortener with a REST API"),
            "url-shortener"
        );
        assert_eq!(project_name("make me a todo list API"), "todo-list");
        assert_eq!(
            project_name("a notes service that needs WEATHER_API_KEY"),
            "notes"
        );
        assert_eq!(project_name("сделай сервис"), "service");
        assert_eq!(project_name("!!!"), "service");
        let long = project_name(&"word ".repeat(30));
        assert!(long.len() <= 40 && !long.ends_with('-'), "{long}");
        assert_eq!(project_name(&"x".repeat(100)), "x".repeat(40));
        let long_first = "y".repeat(41);
        for request in [
            "A URL shortener with a REST API",
            "  --Todo__List!! ",
            "THE BIG_SERVICE_KEY_THING",
            long_first.as_str(),
            "ünïcödé notes 2",
        ] {
            let name = project_name(request);
            let mut chars = name.chars();
            assert!(
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && name.len() <= 40,
                "{request:?} gave {name:?}"
            );
        }
    }

    #[test]
    fn request_text_cannot_break_the_python() {
        let hostile = "notes \"\"\" ''' \\ \u{0} end";
        assert_eq!(docstring_text(hostile), r#"notes \"\"\" ''' \\   end"#);
        let json = python_json(&json!({"t": "it's '''"}));
        assert!(!json.contains('\''), "{json}");
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            json!({"t": "it's '''"})
        );
    }

    #[test]
    fn generation_is_deterministic_and_manifests_parse() {
        let b = blueprint("a notes service that needs WEATHER_API_KEY");
        let once = render(&b, "notes", "a notes service");
        assert_eq!(once, render(&b, "notes", "a notes service"));
        let manifest = once.iter().find(|f| f.path == "artel.json").unwrap();
        let manifest = Manifest::parse(&manifest.contents).unwrap();
        let sources: Vec<(&str, EnvSource)> = manifest
            .env
            .iter()
            .map(|v| (v.name.as_str(), v.source))
            .collect();
        assert!(sources.contains(&("WEATHER_API_KEY", EnvSource::User)));
        assert!(sources.contains(&("SECRET_KEY", EnvSource::Generated)));
        let app = once.iter().find(|f| f.path == "app.py").unwrap();
        for placeholder in [
            "__TITLE__",
            "__ENV_DOC__",
            "__RESOURCE_JSON__",
            "__REQUIRED_ENV_JSON__",
        ] {
            assert!(
                !app.contents.contains(placeholder),
                "{placeholder} is filled"
            );
        }
        let scaffold = scaffold_files("notes", "a notes service");
        let manifest = scaffold.iter().find(|f| f.path == "artel.json").unwrap();
        Manifest::parse(&manifest.contents).unwrap();
    }
}
