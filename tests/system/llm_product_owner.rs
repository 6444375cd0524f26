//! `artel new` with the LLM ProductOwner (`ARTEL_PRODUCT_OWNER__KIND=llm`) against a scripted
//! model on loopback: a free-form line the model turns into a build with its `build` tool, the
//! spec question answered through `answer_question`, the offline agent building and deploying
//! the service, and both calls recorded in `llm_requests` as the ProductOwner's.

use crate::llm_agent::llm_peer::{LlmPeer, Reply};
use crate::new::{Home, JOB, get};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artel_new_with_the_llm_product_owner_builds_what_the_model_understood() {
    let home = Home::new("llm-po").await;
    let peer = LlmPeer::start([Reply::tool_call(
        "po_1",
        "build",
        json!({"description": "a todo list API"}),
    )
    .turn()])
    .await;
    let base = peer.openai_base();
    let env = [
        ("ARTEL_PRODUCT_OWNER__KIND", "llm"),
        ("ARTEL_ANALYST__CONFIRM", "true"),
        ("ARTEL_LLM__BASE_URL", base.as_str()),
        ("ARTEL_LLM__API_KEY", "sk-po-system-key"),
        ("ARTEL_LLM__MODEL", "scripted-po"),
    ];
    let mut run = home.new_job(
        "I keep forgetting my chores, I'd love something with an API to track them",
        &env,
    );
    run.wait_for("Here is what I understood", JOB);
    run.wait_for("\"yes\" to build", Duration::from_secs(10));
    peer.push(Reply::tool_call("po_2", "answer_question", json!({"answer": "approve"})).turn());
    run.say("looks good, go ahead");
    run.wait_for("Building it", JOB);
    let url = run.wait_live();
    let (status, list) = get(&format!("{url}/api/todos")).await;
    assert_eq!(status, 200, "the todo list is deployed: {list}");

    let requests = peer.requests();
    assert_eq!(requests.len(), 2, "one request per line the user typed");
    assert_eq!(requests[0].body["model"], "scripted-po");
    assert!(
        requests[1].raw.contains("todos"),
        "the model is shown the spec that waits: {}",
        requests[1].raw
    );
    let mut db = home.db().await;
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT role, model, status, session_id IS NOT NULL FROM llm_requests ORDER BY id",
    )
    .fetch_all(&mut db)
    .await
    .expect("llm_requests");
    assert_eq!(
        rows,
        vec![
            (
                "product_owner".into(),
                "scripted-po".into(),
                "ok".into(),
                true
            );
            2
        ]
    );
    assert_eq!(peer.remaining(), 0);
    tokio::task::block_in_place(|| run.terminate());
}
