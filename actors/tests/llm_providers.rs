//! The real provider clients against the scripted loopback peer: tool-call round trips in
//! both dialects, streamed and not; every error class; the key sent and never leaked.

mod support;

use artel_actors::llm::{
    Caller, Delta, LlmClient, LlmError, Message, Part, Request, Role, StopReason, ToolResult,
    ToolSpec, Usage,
};
use artel_actors::settings::{LlmProvider, LlmSettings};
use artel_messages::{Classify, ErrorClass, SecretValue};
use serde_json::json;
use std::time::Duration;
use support::llm_peer::{Fault, LlmPeer, OverflowShape, Reply, Turn};

const KEY: &str = "sk-test-7f3a9c-do-not-leak";

fn client(peer: &LlmPeer, provider: LlmProvider) -> LlmClient {
    let base_url = match provider {
        LlmProvider::Openai => peer.openai_base(),
        LlmProvider::Anthropic => peer.url.clone(),
    };
    let settings = LlmSettings {
        provider,
        base_url: Some(base_url),
        api_key: Some(SecretValue::new(KEY)),
        model: Some("test-model".into()),
        timeout_secs: 1,
        max_output_tokens: 512,
        ..LlmSettings::default()
    };
    LlmClient::from_settings(&settings, Caller::new("Developer")).expect("a configured client")
}

fn bash_tool() -> ToolSpec {
    ToolSpec {
        name: "bash".into(),
        description: "Run a shell command in the checkout.".into(),
        input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
    }
}

fn first_request() -> Request {
    Request {
        messages: vec![
            Message::system("You write services."),
            Message::user("List the files."),
        ],
        tools: vec![bash_tool()],
        max_output_tokens: None,
    }
}

async fn ask(
    client: &LlmClient,
    request: &Request,
    stream: bool,
) -> Result<artel_actors::llm::Completion, LlmError> {
    if stream {
        client.stream(request, |_| {}).await
    } else {
        client.complete(request).await
    }
}

/// Asks for a tool call, answers it, and gets the final text: the same conversation in any
/// dialect and mode.
async fn round_trip(provider: LlmProvider, stream: bool) -> LlmPeer {
    let peer = LlmPeer::start([
        Reply::tool_call("call_1", "bash", json!({"command": "ls -la"}))
            .usage(1200, 30, 1000)
            .turn(),
        Reply::text("There are two files.").usage(1300, 8, 0).turn(),
    ])
    .await;
    let client = client(&peer, provider);
    let mut request = first_request();
    let first = ask(&client, &request, stream).await.expect("the tool call");
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    let calls: Vec<_> = first.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 1, "{first:?}");
    assert_eq!(calls[0].id, "call_1");
    assert_eq!(calls[0].name, "bash");
    assert_eq!(calls[0].arguments, json!({"command": "ls -la"}));
    assert_eq!(
        first.usage,
        Usage {
            input: 1200,
            output: 30,
            cached_input: 1000
        }
    );

    request.messages.push(first.message.clone());
    request.messages.push(Message::tool_results([ToolResult::ok(
        "call_1",
        "a.py\nb.py",
    )]));
    let second = ask(&client, &request, stream)
        .await
        .expect("the final answer");
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.message.joined_text(), "There are two files.");
    assert_eq!(second.message.role, Role::Assistant);
    assert_eq!(
        second.usage,
        Usage {
            input: 1300,
            output: 8,
            cached_input: 0
        }
    );
    assert_eq!(peer.remaining(), 0);

    let requests = peer.requests();
    assert_eq!(requests.len(), 2);
    for recorded in &requests {
        assert_eq!(recorded.body["model"], "test-model");
        assert_eq!(recorded.body["max_tokens"], 512);
        assert_eq!(recorded.body["stream"].as_bool().unwrap_or(false), stream);
    }
    peer
}

#[tokio::test]
async fn openai_tool_call_round_trip_without_streaming() {
    let peer = round_trip(LlmProvider::Openai, false).await;
    let requests = peer.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(requests[0].body["tools"][0]["function"]["name"], "bash");
    let history = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        history[0],
        json!({"role": "system", "content": "You write services."})
    );
    assert_eq!(history[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        history[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "a.py\nb.py"})
    );
}

#[tokio::test]
async fn openai_tool_call_round_trip_streamed_asks_for_usage() {
    let peer = round_trip(LlmProvider::Openai, true).await;
    let requests = peer.requests();
    assert_eq!(
        requests[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(requests[0].header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn anthropic_tool_call_round_trip_without_streaming() {
    let peer = round_trip(LlmProvider::Anthropic, false).await;
    let requests = peer.requests();
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(requests[0].header("x-api-key"), Some(KEY));
    assert_eq!(requests[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[0].body["system"], "You write services.");
    assert_eq!(
        requests[0].body["tools"][0]["input_schema"]["required"],
        json!(["command"])
    );
    let history = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(history.len(), 3, "user, assistant, user: {history:?}");
    assert_eq!(history[1]["content"][0]["type"], "tool_use");
    assert_eq!(
        history[1]["content"][0]["input"],
        json!({"command": "ls -la"})
    );
    assert_eq!(
        history[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "a.py\nb.py", "is_error": false})
    );
}

#[tokio::test]
async fn anthropic_tool_call_round_trip_streamed() {
    let peer = round_trip(LlmProvider::Anthropic, true).await;
    assert_eq!(peer.requests()[1].header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn streamed_deltas_arrive_in_order_in_both_dialects() {
    for provider in [LlmProvider::Openai, LlmProvider::Anthropic] {
        let peer = LlmPeer::start([Reply::text("Hello, world")
            .and_tool_call("t9", "bash", json!({"command": "pwd"}))
            .turn()])
        .await;
        let mut deltas = Vec::new();
        let completion = client(&peer, provider)
            .stream(&first_request(), |d| deltas.push(d))
            .await
            .unwrap();
        let text: String = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Hello, world");
        assert!(deltas.len() > 4, "the text came in pieces: {deltas:?}");
        assert!(deltas.contains(&Delta::ToolCallStarted {
            id: "t9".into(),
            name: "bash".into()
        }));
        assert_eq!(completion.message.joined_text(), "Hello, world");
        assert!(matches!(completion.message.content[1], Part::ToolCall(_)));
    }
}

#[tokio::test]
async fn ollama_streams_every_tool_call_at_index_zero() {
    let peer = LlmPeer::start(
        [Reply::tool_call("call_a", "bash", json!({"command": "ls"}))
            .and_tool_call("call_b", "bash", json!({"command": "cat a.py"}))
            .ollama_indexes()
            .turn()],
    )
    .await;
    let completion = client(&peer, LlmProvider::Openai)
        .stream(&first_request(), |_| {})
        .await
        .unwrap();
    let calls: Vec<_> = completion.message.tool_calls().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].arguments, json!({"command": "ls"}));
    assert_eq!(calls[1].id, "call_b");
    assert_eq!(calls[1].arguments, json!({"command": "cat a.py"}));
}

/// Every error path, in both dialects and modes: (what the peer does, what the client says).
async fn failure(provider: LlmProvider, stream: bool, fault: Fault) -> LlmError {
    let peer = LlmPeer::start([Turn::Fault(fault)]).await;
    let err = ask(&client(&peer, provider), &first_request(), stream)
        .await
        .expect_err("the fault surfaces");
    assert_key_absent(&err);
    err
}

fn assert_key_absent(err: &LlmError) {
    let text = format!("{err} {err:?} {}", err.to_failure().reason);
    assert!(!text.contains(KEY), "the key leaked into {text}");
}

const BOTH: [(LlmProvider, bool); 4] = [
    (LlmProvider::Openai, false),
    (LlmProvider::Openai, true),
    (LlmProvider::Anthropic, false),
    (LlmProvider::Anthropic, true),
];

#[tokio::test]
async fn rate_limits_are_retryable_with_the_servers_delay() {
    for (provider, stream) in BOTH {
        let err = failure(
            provider,
            stream,
            Fault::RateLimited(vec![("retry-after", "2".into())]),
        )
        .await;
        assert!(matches!(err, LlmError::RateLimited { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(err.request_status(), "rate_limited");
    }
    let err = failure(
        LlmProvider::Openai,
        false,
        Fault::RateLimited(vec![
            ("retry-after-ms", "250".into()),
            ("retry-after", "1".into()),
        ]),
    )
    .await;
    assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
}

#[tokio::test]
async fn overload_and_server_errors_are_retryable() {
    for (provider, stream) in BOTH {
        let err = failure(provider, stream, Fault::Overloaded).await;
        assert!(
            matches!(err, LlmError::Unavailable { status: 529, .. }),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
        let err = failure(provider, stream, Fault::ServerError).await;
        assert!(
            matches!(err, LlmError::Unavailable { status: 500, .. }),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
    }
}

#[tokio::test]
async fn an_error_event_inside_a_stream_is_classified() {
    let err = failure(LlmProvider::Anthropic, true, Fault::ErrorEventMidway).await;
    assert!(
        matches!(err, LlmError::Unavailable { status: 529, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Retryable);
    let err = failure(LlmProvider::Openai, true, Fault::ErrorEventMidway).await;
    assert!(
        matches!(err, LlmError::Unavailable { status: 502, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_hung_server_times_out_retryably() {
    for (provider, stream) in [(LlmProvider::Openai, false), (LlmProvider::Anthropic, true)] {
        let started = std::time::Instant::now();
        let err = failure(provider, stream, Fault::Hang).await;
        assert!(matches!(err, LlmError::Timeout { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(err.request_status(), "timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn a_stream_silent_midway_times_out_retryably() {
    for provider in [LlmProvider::Openai, LlmProvider::Anthropic] {
        let mut deltas = 0;
        let peer = LlmPeer::start([Turn::Fault(Fault::StallMidway(Reply::text(
            "an answer that stops arriving",
        )))])
        .await;
        let err = client(&peer, provider)
            .stream(&first_request(), |_| deltas += 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LlmError::Timeout { .. }),
            "{provider:?}: {err}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(deltas > 0, "the first half arrived before the silence");
    }
}

#[tokio::test]
async fn a_stream_dropped_midway_is_retryable() {
    for (provider, stream) in BOTH {
        let err = failure(
            provider,
            stream,
            Fault::DropMidway(Reply::text("a long answer that never ends")),
        )
        .await;
        assert!(
            matches!(err, LlmError::StreamDropped { .. }),
            "{provider:?} {stream}: {err}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
    }
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_names_the_address_setting() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let settings = LlmSettings {
        base_url: Some(format!("http://127.0.0.1:{port}/v1")),
        api_key: Some(SecretValue::new(KEY)),
        model: Some("m".into()),
        ..LlmSettings::default()
    };
    let client = LlmClient::from_settings(&settings, Caller::new("Developer")).unwrap();
    let err = client.complete(&first_request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Unreachable { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(err.to_string().contains("ARTEL_LLM__BASE_URL"), "{err}");
    assert_key_absent(&err);
}

#[tokio::test]
async fn context_overflow_is_its_own_error_in_every_vendor_shape() {
    for shape in [
        OverflowShape::OpenAi,
        OverflowShape::Anthropic,
        OverflowShape::VllmLegacy,
        OverflowShape::LlamaCpp,
    ] {
        for (provider, stream) in BOTH {
            let err = failure(provider, stream, Fault::ContextOverflow(shape)).await;
            assert!(
                matches!(err, LlmError::ContextOverflow { .. }),
                "{shape:?}: {err}"
            );
            assert_eq!(err.class(), ErrorClass::Fatal);
        }
    }
}

#[tokio::test]
async fn a_refused_key_is_fatal_names_the_setting_and_is_masked_when_echoed() {
    for (provider, stream) in BOTH {
        let err = failure(
            provider,
            stream,
            Fault::Raw {
                status: 401,
                headers: vec![],
                body: json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "authentication_error"}}).to_string(),
            },
        )
        .await;
        assert!(
            matches!(err, LlmError::KeyRefused { status: 401, .. }),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Fatal);
        let text = err.to_string();
        assert!(
            text.contains("the Developer's provider refused the key"),
            "{text}"
        );
        assert!(text.contains("set ARTEL_LLM__API_KEY"), "{text}");
        assert!(text.contains("Incorrect API key provided: ***"), "{text}");
    }
}

#[tokio::test]
async fn spend_limits_and_bad_requests_are_fatal() {
    let quota = failure(
        LlmProvider::Openai,
        false,
        Fault::Raw {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "code": "insufficient_quota"}}).to_string(),
        },
    )
    .await;
    assert!(matches!(quota, LlmError::QuotaExhausted { .. }), "{quota}");
    assert_eq!(quota.class(), ErrorClass::Fatal);
    assert!(quota.to_string().contains("ARTEL_LLM__API_KEY"));
    for status in [400, 403, 404] {
        let err = failure(
            LlmProvider::Anthropic,
            false,
            Fault::Raw {
                status,
                headers: vec![],
                body: json!({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}).to_string(),
            },
        )
        .await;
        assert_eq!(err.class(), ErrorClass::Fatal, "{status}: {err}");
    }
}

#[tokio::test]
async fn a_wrong_base_url_is_fatal_and_names_the_address_setting() {
    let peer = LlmPeer::start([Reply::text("hi").turn()]).await;
    // An Anthropic client pointed at an OpenAI-only path layout: the peer answers 404.
    let settings = LlmSettings {
        provider: LlmProvider::Anthropic,
        base_url: Some(peer.openai_base()),
        model: Some("m".into()),
        ..LlmSettings::default()
    };
    let client = LlmClient::from_settings(&settings, Caller::new("ProductOwner")).unwrap();
    let err = client.complete(&first_request()).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Rejected { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ARTEL_LLM__BASE_URL"), "{err}");
    assert_eq!(peer.take_overruns().len(), 1, "the peer saw the stray path");
}

#[tokio::test]
async fn an_answer_in_the_wrong_dialect_is_fatal_and_names_the_provider_setting() {
    for (provider, stream) in BOTH {
        let (status, body) = if stream {
            (200, "data: {\"unexpected\": true}\n\n".to_owned())
        } else {
            (200, json!({"result": "from some other API"}).to_string())
        };
        let err = failure(
            provider,
            stream,
            Fault::Raw {
                status,
                headers: vec![],
                body,
            },
        )
        .await;
        assert_eq!(
            err.class(),
            ErrorClass::Fatal,
            "{provider:?} {stream}: {err}"
        );
        assert!(matches!(err, LlmError::BadResponse { .. }), "{err}");
        assert!(err.to_string().contains("ARTEL_LLM__PROVIDER"), "{err}");
    }
}

#[tokio::test]
async fn the_peer_fails_loudly_when_its_script_runs_out() {
    let peer = LlmPeer::start([Reply::text("only one").turn()]).await;
    let client = client(&peer, LlmProvider::Openai);
    client.complete(&first_request()).await.unwrap();
    let err = client.complete(&first_request()).await.unwrap_err();
    assert!(
        err.to_string().contains("script ran out at request #2"),
        "{err}"
    );
    let overruns = peer.take_overruns();
    assert_eq!(overruns.len(), 1, "{overruns:?}");
}

#[tokio::test]
async fn a_missing_model_names_its_setting() {
    let err =
        LlmClient::from_settings(&LlmSettings::default(), Caller::new("Developer")).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(err.to_string().contains("set ARTEL_LLM__MODEL"), "{err}");
}

#[tokio::test]
async fn no_key_means_no_auth_header_for_local_servers() {
    let peer = LlmPeer::start([Reply::text("hi").turn()]).await;
    let settings = LlmSettings {
        base_url: Some(peer.openai_base()),
        model: Some("llama3".into()),
        ..LlmSettings::default()
    };
    let client = LlmClient::from_settings(&settings, Caller::new("Developer")).unwrap();
    client.complete(&first_request()).await.unwrap();
    assert_eq!(peer.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn the_key_is_only_ever_in_its_header() {
    for provider in [LlmProvider::Openai, LlmProvider::Anthropic] {
        let peer = LlmPeer::start([Reply::text("ok").turn()]).await;
        client(&peer, provider)
            .complete(&first_request())
            .await
            .unwrap();
        let recorded = &peer.requests()[0];
        assert!(!recorded.raw.contains(KEY), "the key is not in the body");
        let carrying: Vec<&str> = recorded
            .headers
            .iter()
            .filter(|(_, v)| v.contains(KEY))
            .map(|(n, _)| n.as_str())
            .collect();
        let expected = match provider {
            LlmProvider::Openai => "authorization",
            LlmProvider::Anthropic => "x-api-key",
        };
        assert_eq!(carrying, vec![expected]);
        assert!(recorded.everything().contains(KEY));
    }
}

#[tokio::test]
async fn each_role_talks_to_its_own_provider_and_errors_name_its_setting() {
    use artel_actors::settings::{LlmRole, Settings};
    let shared = LlmPeer::start([
        Reply::text("from the shared provider").turn(),
        Turn::Fault(Fault::Raw {
            status: 401,
            headers: vec![],
            body: r#"{"error":{"message":"bad key","type":"invalid_request_error"}}"#.into(),
        }),
    ])
    .await;
    let own = LlmPeer::start([
        Reply::text("from the ProductOwner's provider").turn(),
        Turn::Fault(Fault::Raw {
            status: 401,
            headers: vec![],
            body: r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#.into(),
        }),
    ])
    .await;
    let env = [
        ("ARTEL_LLM__BASE_URL", shared.openai_base()),
        ("ARTEL_LLM__MODEL", "dev-model".to_owned()),
        ("ARTEL_LLM__API_KEY", "sk-shared-key".to_owned()),
        ("ARTEL_LLM__PRODUCT_OWNER__PROVIDER", "anthropic".to_owned()),
        ("ARTEL_LLM__PRODUCT_OWNER__BASE_URL", own.url.clone()),
        ("ARTEL_LLM__PRODUCT_OWNER__MODEL", "po-model".to_owned()),
        ("ARTEL_LLM__PRODUCT_OWNER__API_KEY", "sk-po-key".to_owned()),
        ("ARTEL_PRODUCT_OWNER__KIND", "llm".to_owned()),
        ("ARTEL_AGENT__KIND", "llm".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load(None, false, env).expect("valid settings");
    let developer = LlmClient::for_role(&settings.llm, LlmRole::Developer).unwrap();
    let po = LlmClient::for_role(&settings.llm, LlmRole::ProductOwner).unwrap();
    assert_eq!((developer.model(), po.model()), ("dev-model", "po-model"));

    let answer = developer.complete(&first_request()).await.unwrap();
    assert_eq!(answer.message.joined_text(), "from the shared provider");
    let answer = po.complete(&first_request()).await.unwrap();
    assert_eq!(
        answer.message.joined_text(),
        "from the ProductOwner's provider"
    );
    let dev_request = &shared.requests()[0];
    assert_eq!(dev_request.path, "/v1/chat/completions");
    assert_eq!(dev_request.body["model"], "dev-model");
    assert_eq!(
        dev_request.header("authorization"),
        Some("Bearer sk-shared-key")
    );
    let po_request = &own.requests()[0];
    assert_eq!(po_request.path, "/v1/messages");
    assert_eq!(po_request.body["model"], "po-model");
    assert_eq!(po_request.header("x-api-key"), Some("sk-po-key"));
    assert!(po_request.header("authorization").is_none());

    let err = developer.complete(&first_request()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the Developer's provider refused the key")
            && err.to_string().contains("set ARTEL_LLM__API_KEY"),
        "{err}"
    );
    let err = po.complete(&first_request()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the ProductOwner's provider refused the key")
            && err
                .to_string()
                .contains("set ARTEL_LLM__PRODUCT_OWNER__API_KEY"),
        "{err}"
    );
    assert_eq!((shared.remaining(), own.remaining()), (0, 0));
}
