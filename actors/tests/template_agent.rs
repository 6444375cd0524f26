//! The template agent's output, run for real: for a few requests the scaffold and then the
//! rendered service are written to a temporary directory, their own unittest suites run
//! with `python3` (the command the manifest declares), and the service is started the way
//! the manifest says and spoken to over HTTP.

use artel_actors::agent::template;
use artel_messages::env_analyzer::EnvSource;
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

/// Runs the manifest's test command in `dir`; answers whether it passed and what it said.
async fn run_tests(dir: &Path) -> (bool, String) {
    run(dir, &manifest(dir).test, &BTreeMap::new()).await
}

/// Starts the manifest's run command in `dir`; killed when dropped.
fn start(dir: &Path, env: &BTreeMap<String, String>) -> Child {
    let manifest = manifest(dir);
    Command::new(&manifest.run[0])
        .args(&manifest.run[1..])
        .current_dir(dir)
        .env_clear()
        .env("PATH", PATH)
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the service")
}

/// Starts the service with `env`, which lacks something it needs, and waits for it to give
/// up. A service that starts anyway is killed (on drop) and fails the test.
async fn refused_start(dir: &Path, env: &BTreeMap<String, String>) -> std::process::Output {
    let waiting = start(dir, env).wait_with_output();
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the service refuses to start instead of serving")
        .expect("wait for the service")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("build a client")
}

/// Waits until the manifest's health path answers 200 (the service is starting up).
async fn wait_healthy(client: &reqwest::Client, base: &str, health: &str, child: &mut Child) {
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service exited before it was healthy: {status}");
        }
        if let Ok(response) = client.get(format!("{base}{health}")).send().await {
            assert_eq!(response.status(), 200);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the service never answered {health}");
}

/// Renders `request` over its scaffold, checks its own suite passes and the expected tests
/// ran, then starts it. Answers the directory, the running service and its base URL.
async fn build_and_start(request: &str, expect_redirect: bool) -> (TempDir, Child, String) {
    let dir = TempDir::new();
    let name = template::project_name(request);
    write(dir.path(), &template::scaffold_files(&name, request));
    let blueprint = template::blueprint(request);
    write(dir.path(), &template::render(&blueprint, &name, request));

    let (passed, output) = run_tests(dir.path()).await;
    assert!(
        passed,
        "the generated suite passes for {request:?}:\n{output}"
    );
    for test in [
        "test_create_list_get",
        "test_update_and_delete_with_token",
        "test_validation",
        "test_wrong_types_are_refused",
        "test_data_survives_a_restart",
        "test_unknown_paths_are_404",
    ] {
        assert!(
            output.contains(&format!("{test} ")),
            "{test} ran:\n{output}"
        );
    }
    let redirect = if expect_redirect {
        "... ok"
    } else {
        "... skipped"
    };
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("test_redirect ") && l.contains(redirect)),
        "test_redirect {redirect}:\n{output}"
    );

    let port = free_port();
    let mut child = start(dir.path(), &environment(dir.path(), port, None));
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&client(), &base, &manifest(dir.path()).health, &mut child).await;
    (dir, child, base)
}

/// Creates `body` under `/api/<plural>` and reads it back; answers the created item.
async fn create_and_read(base: &str, plural: &str, body: Value) -> Value {
    let client = client();
    let response = client
        .post(format!("{base}/api/{plural}"))
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("created JSON");
    for (key, value) in body.as_object().expect("an object") {
        assert_eq!(&created[key], value, "{key} as given");
    }
    let id = created["id"].as_str().expect("an id");
    assert!(
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{id} is url-safe"
    );
    let read: Value = client
        .get(format!("{base}/api/{plural}/{id}"))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("read JSON");
    assert_eq!(read["id"], created["id"]);
    assert!(
        read.get("delete_token").is_none(),
        "the token is shown once"
    );
    let list: Value = client
        .get(format!("{base}/api/{plural}"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    created
}

#[tokio::test]
async fn a_url_shortener_shortens_and_redirects() {
    let request = "A URL shortener with a REST API";
    assert_eq!(template::project_name(request), "url-shortener");
    let (_dir, _child, base) = build_and_start(request, true).await;
    let target = "https://example.org/some/long/path?q=1";
    let created = create_and_read(&base, "links", json!({"url": target})).await;
    let id = created["id"].as_str().expect("an id");

    let client = client();
    let response = client
        .get(format!("{base}/r/{id}"))
        .send()
        .await
        .expect("follow the short link");
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], target);
    let read: Value = client
        .get(format!("{base}/api/links/{id}"))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("read JSON");
    assert_eq!(read["hits"], 1);

    let refused = client
        .post(format!("{base}/api/links"))
        .json(&json!({"url": "not a url"}))
        .send()
        .await
        .expect("create a bad link");
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.expect("error JSON");
    assert_eq!(error["error"]["code"], "invalid_field");

    let forbidden = client
        .delete(format!("{base}/api/links/{id}"))
        .header("X-Delete-Token", "guess")
        .send()
        .await
        .expect("delete without the token");
    assert_eq!(forbidden.status(), 403);
    let deleted = client
        .delete(format!("{base}/api/links/{id}"))
        .header(
            "X-Delete-Token",
            created["delete_token"].as_str().expect("a token"),
        )
        .send()
        .await
        .expect("delete with the token");
    assert_eq!(deleted.status(), 204);
    let gone = client
        .get(format!("{base}/r/{id}"))
        .send()
        .await
        .expect("a deleted link");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_todo_list_keeps_todos() {
    let (_dir, _child, base) = build_and_start("a todo list API", false).await;
    let created = create_and_read(&base, "todos", json!({"title": "write tests"})).await;
    assert_eq!(created["done"], false, "done defaults to false");
    let id = created["id"].as_str().expect("an id");
    let updated: Value = client()
        .patch(format!("{base}/api/todos/{id}"))
        .json(&json!({"done": true}))
        .send()
        .await
        .expect("update")
        .json()
        .await
        .expect("updated JSON");
    assert_eq!(
        (&updated["done"], &updated["title"]),
        (&json!(true), &json!("write tests"))
    );
}

#[tokio::test]
async fn a_service_needing_a_user_secret_waits_for_it() {
    let request = "a notes service that needs WEATHER_API_KEY";
    let (dir, _child, base) = build_and_start(request, false).await;
    create_and_read(&base, "notes", json!({"title": "hi", "body": "there"})).await;

    let declared = manifest(dir.path())
        .env
        .into_iter()
        .find(|v| v.name == "WEATHER_API_KEY")
        .expect("the manifest declares the user's secret");
    assert_eq!(
        (declared.source, declared.required),
        (EnvSource::User, true)
    );

    let env = environment(dir.path(), free_port(), Some("WEATHER_API_KEY"));
    let refused = refused_start(dir.path(), &env).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("WEATHER_API_KEY"), "{stderr}");
}

#[tokio::test]
async fn every_service_refuses_to_start_without_its_secret_key() {
    let request = "a todo list API";
    let dir = TempDir::new();
    let blueprint = template::blueprint(request);
    write(
        dir.path(),
        &template::render(&blueprint, "todo-list", request),
    );
    let env = environment(dir.path(), free_port(), Some("SECRET_KEY"));
    let refused = refused_start(dir.path(), &env).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("SECRET_KEY"));
}

#[tokio::test]
async fn the_scaffold_alone_passes_its_tests_and_serves_health() {
    let dir = TempDir::new();
    write(
        dir.path(),
        &template::scaffold_files("url-shortener", "A URL shortener with a REST API"),
    );
    let (passed, output) = run_tests(dir.path()).await;
    assert!(passed, "the scaffold's suite passes:\n{output}");
    assert!(output.contains("Ran 1 test"), "{output}");

    let port = free_port();
    let mut child = start(dir.path(), &environment(dir.path(), port, None));
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&client(), &base, "/health", &mut child).await;
}

#[tokio::test]
async fn any_request_text_gives_valid_python() {
    let request = "a \"\"\" notes ''' service \\ that needs A_B_TOKEN";
    let dir = TempDir::new();
    let name = template::project_name(request);
    write(dir.path(), &template::scaffold_files(&name, request));
    let blueprint = template::blueprint(request);
    write(dir.path(), &template::render(&blueprint, &name, request));
    let (passed, output) = run_tests(dir.path()).await;
    assert!(passed, "the suite passes for {request:?}:\n{output}");
    let docstring = app_docstring(dir.path());
    assert!(
        docstring.contains(request),
        "the request reads back unchanged from the docstring: {docstring:?}"
    );
}

#[tokio::test]
async fn every_resource_passes_its_own_suite() {
    for (request, resource) in [
        ("a bookmark manager", "bookmarks"),
        ("a guestbook", "items"),
    ] {
        let blueprint = template::blueprint(request);
        assert_eq!(blueprint.resource.name, resource);
        let dir = TempDir::new();
        let name = template::project_name(request);
        write(dir.path(), &template::render(&blueprint, &name, request));
        let (passed, output) = run_tests(dir.path()).await;
        assert!(passed, "the suite passes for {request:?}:\n{output}");
    }
}
