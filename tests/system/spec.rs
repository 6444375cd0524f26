//! The spec through `artel new`: what was asked is what is deployed. The request becomes a
//! spec the user sees first (and may correct in words), the offline agent compiles it, the
//! Tester holds the service to it, and a request outside the offline range gets an honest
//! answer instead of a generic API.

use crate::new::{Home, JOB, Run, get, post};
use artel_actors::acceptance::api::{Api, Kind, Resource, sample};
use artel_messages::spec::Spec;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The spec the task's last `write_spec` step journaled.
async fn spec_of(home: &Home) -> Spec {
    let mut db = home.db().await;
    let output: Value = sqlx::query_scalar(
        "SELECT output FROM task_steps WHERE step = 'write_spec' AND status = 'succeeded' \
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .expect("a written spec");
    serde_json::from_value(output["spec"].clone()).expect("the journaled spec reads back")
}

/// A valid create body for `resource`, its references set from `refs`.
fn body(resource: &Resource, n: usize, refs: &[(&str, &Value)]) -> Value {
    let mut body = Map::new();
    for field in resource.fields.iter().filter(|f| f.writable) {
        if field.kind == Kind::Reference {
            if let Some((_, id)) = refs.iter().find(|(name, _)| *name == field.name) {
                body.insert(field.name.clone(), (*id).clone());
            }
        } else {
            body.insert(field.name.clone(), sample(field, n));
        }
    }
    Value::Object(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blog_with_posts_and_comments_deploys_comments_that_need_an_existing_post() {
    let home = Home::new("blog").await;
    let mut run = home.new_job("a blog with posts and comments", &[]);
    let url = run.wait_live();
    let spec = spec_of(&home).await;
    let comments = spec.resource("comments").expect("comments in the spec");
    assert_eq!(comments.belongs_to, ["post"], "{spec:?}");
    let api = Api::of(&spec);
    let posts = api.resource("posts").expect("posts");
    let comments = api.resource("comments").expect("comments");

    let (status, post_made) = post(&format!("{url}/api/posts"), body(posts, 1, &[])).await;
    assert_eq!(status, 201, "{post_made}");
    let id = post_made["id"].clone();
    // A comment on a post that does not exist is refused, with a JSON error.
    let nowhere = json!("no-such-post");
    let (status, refused) = post(
        &format!("{url}/api/comments"),
        body(comments, 1, &[("post_id", &nowhere)]),
    )
    .await;
    assert!(matches!(status, 400 | 422), "{status} {refused}");
    assert!(refused["error"]["code"].is_string(), "{refused}");
    let (status, comment) = post(
        &format!("{url}/api/comments"),
        body(comments, 2, &[("post_id", &id)]),
    )
    .await;
    assert_eq!(status, 201, "{comment}");
    let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
    let (status, listed) = get(&format!("{url}/api/posts/{id}/comments")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_russian_request_deploys_resources_named_from_it_and_keeps_its_words() {
    let home = Home::new("rasxody").await;
    let request = "Нужен API для учёта расходов по категориям";
    let mut run = home.new_job(request, &[]);
    let url = run.wait_live();
    let spec = spec_of(&home).await;
    assert_eq!(spec.language, "ru", "{spec:?}");
    let expenses = spec
        .resource("expenses")
        .expect("expenses, from «расходов»");
    assert!(
        expenses
            .label
            .as_deref()
            .is_some_and(|l| l.to_lowercase().starts_with("расход")),
        "the user's own word is kept: {expenses:?}"
    );
    let api = Api::of(&spec);
    let resource = api.resource("expenses").expect("expenses");
    let made = body(resource, 3, &[]);
    let (status, created) = post(&format!("{url}/api/expenses"), made).await;
    assert_eq!(status, 201, "{created}");
    let (status, listed) = get(&format!("{url}/api/expenses")).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));
    // The project's description is the request, Cyrillic and all.
    let mut db = home.db().await;
    let description: String = sqlx::query_scalar("SELECT description FROM projects")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(description, request);
    run.terminate();
}

/// Waits for the ProductOwner's spec question; answers its text.
fn question(run: &mut Run) -> String {
    run.wait_for("Here is what I understood", JOB);
    // The spec follows on the next lines, up to the question's last line.
    let last = run.wait_for("\"yes\" to build", Duration::from_secs(10));
    let start = run
        .seen
        .iter()
        .rposition(|l| l.contains("Here is what I understood"))
        .unwrap_or(0);
    let mut text = run.seen[start..].join("\n");
    text.push_str(&last);
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spec_question_answered_with_a_correction_builds_the_corrected_spec() {
    let home = Home::new("correct").await;
    let mut run = home.new_job(
        "make me a todo list API",
        &[("ARTEL_ANALYST__CONFIRM", "true")],
    );
    let first = question(&mut run);
    assert!(!first.contains("due_date"), "{first}");
    run.say("add a due date");
    run.wait_for("Updating the spec", JOB);
    let second = question(&mut run);
    assert!(
        second.contains("due_date"),
        "the new version shows it: {second}"
    );
    run.say("yes");
    let url = run.wait_live();
    let spec = spec_of(&home).await;
    assert_eq!(spec.version, 2, "{spec:?}");
    let api = Api::of(&spec);
    let todos = api.resource("todos").expect("todos");
    let due = todos.field("due_date").expect("the corrected field");
    assert_eq!(due.kind, Kind::Date, "{due:?}");
    let mut made = body(todos, 1, &[]);
    made["due_date"] = json!("not a date");
    let (status, refused) = post(&format!("{url}/api/todos"), made.clone()).await;
    assert!(
        matches!(status, 400 | 422),
        "a due date is validated: {refused}"
    );
    made["due_date"] = json!("2027-03-01");
    let (status, created) = post(&format!("{url}/api/todos"), made).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["due_date"], "2027-03-01");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_outside_the_offline_range_gets_an_honest_answer_and_no_deploy() {
    let home = Home::new("bot").await;
    let out = tokio::task::spawn_blocking({
        let env = home.env();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_artel"))
                .args([
                    "new",
                    "--local",
                    "--exit-when-done",
                    "a Telegram bot that reminds me to drink water",
                ])
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env_remove("REDIS_URL")
                .env("ARTEL_HTTP__LISTEN", "127.0.0.1:0")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("artel runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "not a success: {stdout}\n{stderr}");
    let said = format!("{stdout}\n{stderr}");
    assert!(said.contains("ARTEL_AGENT__KIND=llm"), "{said}");
    assert!(said.contains("Telegram bot"), "says what was asked: {said}");
    assert!(!said.contains("live at"), "{said}");
    let mut db = home.db().await;
    let deployments: i64 = sqlx::query_scalar("SELECT count(*) FROM deployments")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(deployments, 0, "nothing was deployed");
}
