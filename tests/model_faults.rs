//! The model client against a misbehaving provider (issue 5, docs/DESIGN.md §8).
//!
//! Most scenarios run the real `tether` binary over LSP against the scripted
//! model server with fault injection; a few drive `ModelClient` directly where
//! that says more (backoff bounds, cancellation timing, odd bodies).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Recorded, Reply};
use tempfile::TempDir;
use tether::config::{Config, ModelOptions, Secret, Sources};
use tether::model::{ModelClient, ModelError, StreamEvent};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
const KEY: &str = "sk-test-secret-123";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

/// A running `tether` with its workspace and data directory.
struct Session {
    ed: Editor,
    ws: TempDir,
    data: TempDir,
}

/// Starts `tether` against `model`; `extra` is merged into initializationOptions.
async fn start(model: &ModelServer, extra: Value) -> Session {
    start_with(model, extra, &[]).await
}

async fn start_with(model: &ModelServer, extra: Value, env: &[(&str, &str)]) -> Session {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    support::write_file(ws.path(), "notes.txt", "alpha\nbeta\n");
    let mut opts = json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut opts, extra) {
        o.extend(e);
    }
    let mut cfg = EditorConfig::new(bin(), ClientProfile::VsCode, ws.path()).init_options(opts);
    for (k, v) in env {
        cfg = cfg.env(k, v);
    }
    let (ed, _) = Editor::start(cfg).await;
    Session { ed, ws, data }
}

async fn prompt(ed: &Editor, text: &str) -> Value {
    prompt_with(ed, json!({"text": text})).await
}

/// Sends `tether/prompt` and waits for its result and for its `turnEnd`
/// update (notifications and the result travel separately).
async fn prompt_with(ed: &Editor, params: Value) -> Value {
    let result = ed
        .request("tether/prompt", params)
        .await
        .unwrap_or_else(|e| panic!("prompt failed: {e}\n{}", ed.dump()));
    let turn = result["turnId"].clone();
    ed.wait_update(|u| u["kind"] == "turnEnd" && u["turnId"] == turn, T)
        .await;
    result
}

/// All streamed text of the session so far, in order.
fn streamed(ed: &Editor) -> String {
    ed.updates()
        .iter()
        .filter(|u| u["kind"] == "text")
        .filter_map(|u| u["delta"].as_str())
        .collect()
}

fn show_messages(ed: &Editor) -> Vec<String> {
    ed.notifications()
        .iter()
        .filter(|n| n.method == "window/showMessage")
        .map(|n| n.params["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// One SSE chunk in OpenAI's shape, with `delta` as given.
fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}

fn tool_delta(call: Value) -> String {
    chunk(json!({"tool_calls": [call]}), None)
}

fn gap(reqs: &[Recorded], a: usize, b: usize) -> Duration {
    reqs[b].at.duration_since(reqs[a].at)
}

// ---------------------------------------------------------------------------
// Lenient parsing, end to end

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_deltas_without_index_are_assembled() {
    // id/name only in the first chunk, no `index` anywhere; the third call has
    // no id either (Ollama-style), so Tether makes one up.
    let events = vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": ""}}]}),
            None,
        ),
        tool_delta(json!({"function": {"arguments": "{\"path\": "}})),
        tool_delta(json!({"function": {"arguments": "\"notes.txt\"}"}})),
        tool_delta(json!({"id": "c2", "function": {"name": "list_dir", "arguments": "{}"}})),
        tool_delta(json!({"function": {"name": "search", "arguments": "{\"pattern\""}})),
        tool_delta(json!({"function": {"arguments": ": \"beta\"}"}})),
        chunk(json!({}), Some("tool_calls")),
    ];
    let model = ModelServer::start(vec![
        Reply::RawSse { events, done: true },
        Reply::text("All three ran."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "look around").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");

    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let results = tool_results(&reqs[1].body);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0].0, "c1");
    assert!(results[0].1.contains("beta"), "read ran: {}", results[0].1);
    assert_eq!(results[1].0, "c2");
    assert!(
        results[1].1.contains("notes.txt"),
        "list ran: {}",
        results[1].1
    );
    assert!(
        results[2].0.starts_with("call_"),
        "made-up id: {}",
        results[2].0
    );
    assert!(
        results[2].1.contains("notes.txt"),
        "search ran: {}",
        results[2].1
    );
    // The assistant message sent back carries the same ids and whole arguments.
    let assistant = reqs[1].body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "assistant"))
        .cloned()
        .expect("assistant message");
    let calls = assistant["tool_calls"].as_array().expect("tool_calls");
    let args: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default(),
                c["function"]["arguments"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(args[0], ("c1", "{\"path\": \"notes.txt\"}"));
    assert_eq!(args[2], (results[2].0.as_str(), "{\"pattern\": \"beta\"}"));
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_split_over_50_chunks() {
    let content = "Ünïcödé line 😀 with \"quotes\" and \\ backslashes\n".repeat(8);
    let args = json!({"path": "out/big.txt", "content": content}).to_string();
    let chars: Vec<char> = args.chars().collect();
    let per = chars.len().div_ceil(50);
    let pieces: Vec<String> = chars.chunks(per).map(|c| c.iter().collect()).collect();
    assert_eq!(pieces.len(), 50);
    let mut events = vec![tool_delta(
        json!({"index": 0, "id": "w", "type": "function", "function": {"name": "write_file", "arguments": ""}}),
    )];
    events.extend(
        pieces
            .iter()
            .map(|p| tool_delta(json!({"index": 0, "function": {"arguments": p}}))),
    );
    events.push(chunk(json!({}), Some("tool_calls")));
    let model = ModelServer::start(vec![
        Reply::RawSse { events, done: true },
        Reply::text("Written."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "write it").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    let written = std::fs::read_to_string(s.ws.path().join("out/big.txt")).expect("written");
    assert_eq!(written, content);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_replies_are_accepted() {
    // A server that ignores `stream: true`: one JSON body per request.
    let model = ModelServer::start(vec![
        Reply::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "scripted",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "r1", "type": "function",
                    "function": {"name": "read_file", "arguments": "{\"path\":\"notes.txt\"}"}}]}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        })),
        Reply::Json(json!({
            "id": "chatcmpl-2", "object": "chat.completion", "model": "scripted",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "The file has two lines."}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26},
        })),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "how many lines?").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(result["text"], "The file has two lines.");
    assert_eq!(streamed(&s.ed), "The file has two lines.");
    let results = tool_results(&model.requests()[1].body);
    assert_eq!(results[0].0, "r1");
    assert!(results[0].1.contains("beta"), "{}", results[0].1);
    let usage: Vec<u64> =
        s.ed.updates()
            .iter()
            .filter(|u| u["kind"] == "usage")
            .filter_map(|u| u["promptTokens"].as_u64())
            .collect();
    assert_eq!(usage, [11, 20]);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_and_a_missing_done_or_finish_reason_are_tolerated() {
    // reasoning_content (vLLM/DeepSeek) and reasoning (OpenRouter), a chunk
    // with choices: null, content as parts. One end marker is enough: a
    // finish_reason without [DONE], or [DONE] without a finish_reason.
    let events = |finish: Option<&str>| {
        vec![
            chunk(
                json!({"role": "assistant", "reasoning_content": "Let me think. "}),
                None,
            ),
            chunk(json!({"reasoning": "Still thinking."}), None),
            json!({"id": "x", "choices": null}).to_string(),
            chunk(json!({"content": "Answer: "}), None),
            chunk(json!({"content": [{"type": "text", "text": "42"}]}), finish),
        ]
    };
    let model = ModelServer::start(vec![
        Reply::RawSse {
            events: events(Some("stop")),
            done: false,
        },
        Reply::RawSse {
            events: events(None),
            done: true,
        },
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "think").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(result["text"], "Answer: 42");
    assert_eq!(
        streamed(&s.ed),
        "Answer: 42",
        "reasoning is not shown as the answer"
    );
    let sid = result["sessionId"].clone();
    let again = prompt_with(&s.ed, json!({"text": "again", "sessionId": sid})).await;
    assert_eq!(again["stopReason"], "end_turn", "{again}");
    assert_eq!(again["text"], "Answer: 42");
    assert_eq!(model.requests().len(), 2);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_just_stops_is_a_cut_reply_not_a_final_one() {
    // Text, then the body ends cleanly: no finish_reason, no [DONE]. The
    // text stays (shown once, stored) but the turn is an error that says the
    // reply was cut; nothing is retried after output.
    let model = ModelServer::start(vec![
        Reply::RawSse {
            events: vec![
                chunk(
                    json!({"role": "assistant", "content": "The first half"}),
                    None,
                ),
                chunk(json!({"content": " of an answer"}), None),
            ],
            done: false,
        },
        Reply::text("SHOULD NOT APPEAR"),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "error", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("without a finish_reason or [DONE]"),
        "{error}"
    );
    assert!(error.contains("cut short"), "{error}");
    assert_eq!(streamed(&s.ed), "The first half of an answer", "shown once");
    assert_eq!(result["text"], "The first half of an answer");
    assert_eq!(model.requests().len(), 1, "not retried after output");
    let shown =
        s.ed.wait_notification(|n| n.method == "window/showMessage", T)
            .await;
    assert!(
        shown.params["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cut short"),
        "the person is told: {}",
        shown.params
    );
    let sid = result["sessionId"].as_str().expect("sid");
    let hist =
        s.ed.request("tether/history", json!({"sessionId": sid}))
            .await
            .expect("history");
    assert_eq!(hist["messages"][1]["text"], "The first half of an answer");
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_before_any_text_is_retried() {
    // Only a tool call's complete arguments arrived, then the body ended
    // without an end marker: nothing was shown, so it is asked again.
    let model = ModelServer::start(vec![
        Reply::RawSse {
            events: vec![tool_delta(
                json!({"index": 0, "id": "c1", "function": {"name": "list_dir", "arguments": "{}"}}),
            )],
            done: false,
        },
        Reply::text("Retried and whole."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(result["text"], "Retried and whole.");
    assert_eq!(model.requests().len(), 2);
    assert!(
        !s.ed.updates().iter().any(|u| u["kind"] == "toolCall"),
        "the half-sent call never ran"
    );
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_reported_and_totalled_per_session() {
    let with_usage = |text: &str, p: u64, c: u64| {
        Reply::RawSse {
        events: vec![
            chunk(json!({"role": "assistant", "content": text}), None),
            chunk(json!({}), Some("stop")),
            json!({"id": "x", "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
                .to_string(),
        ],
        done: true,
    }
    };
    let model = ModelServer::start(vec![
        with_usage("one", 100, 7),
        with_usage("two", 150, 9),
        Reply::text("three, no usage"),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let first = prompt(&s.ed, "first").await;
    let sid = first["sessionId"].as_str().expect("session id").to_string();
    for text in ["second", "third"] {
        let r = prompt_with(&s.ed, json!({"sessionId": sid, "text": text})).await;
        assert_eq!(r["stopReason"], "end_turn");
    }
    let usage: Vec<(u64, u64)> =
        s.ed.updates()
            .iter()
            .filter(|u| u["kind"] == "usage")
            .map(|u| {
                (
                    u["promptTokens"].as_u64().unwrap_or(0),
                    u["completionTokens"].as_u64().unwrap_or(0),
                )
            })
            .collect();
    assert_eq!(usage, [(100, 7), (150, 9)]);
    let data = s.data.path().to_path_buf();
    s.ed.shutdown().await;
    let db = rusqlite::Connection::open(data.join("tether.db")).expect("open db");
    let totals: (i64, i64) = db
        .query_row(
            "SELECT prompt_tokens, completion_tokens FROM sessions WHERE id = ?1",
            [&sid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("session row");
    assert_eq!(totals, (250, 16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_options_reach_the_request() {
    let model = ModelServer::start(vec![Reply::text("ok")]).await;
    let s = start(
        &model,
        json!({"modelOptions": {
            "headers": {"HTTP-Referer": "https://tether.example", "X-Title": "Tether tests"},
            "temperature": 0.3,
            "maxTokens": 256,
            "extraBody": {"top_k": 40, "provider": {"order": ["fast"]}},
        }}),
    )
    .await;
    prompt(&s.ed, "hi").await;
    let r = &model.requests()[0];
    assert_eq!(r.header("http-referer"), Some("https://tether.example"));
    assert_eq!(r.header("x-title"), Some("Tether tests"));
    assert_eq!(r.body["temperature"], 0.3);
    assert_eq!(r.body["max_tokens"], 256);
    assert_eq!(r.body["top_k"], 40);
    assert_eq!(r.body["provider"]["order"][0], "fast");
    assert_eq!(r.body["stream"], true);
    assert_eq!(
        r.header("authorization"),
        None,
        "no key configured, none sent"
    );
    s.ed.shutdown().await;
}

// ---------------------------------------------------------------------------
// Retries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429_waits_for_retry_after() {
    let model =
        ModelServer::start(vec![Reply::rate_limited(1), Reply::text("After the wait.")]).await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(result["text"], "After the wait.");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let waited = gap(&reqs, 0, 1);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(
        waited < Duration::from_secs(4),
        "but not much later: {waited:?}"
    );
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_500_three_times_then_success() {
    let model = ModelServer::start(vec![
        Reply::error(500, "boom 1"),
        Reply::error(502, "boom 2"),
        Reply::error(503, "boom 3"),
        Reply::text("Fourth time lucky."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(streamed(&s.ed), "Fourth time lucky.");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 4);
    // Exponential: each wait at least the minimum backoff, and growing overall.
    for i in 0..3 {
        assert!(
            gap(&reqs, i, i + 1) >= Duration::from_millis(200),
            "{:?}",
            gap(&reqs, i, i + 1)
        );
    }
    assert!(
        gap(&reqs, 2, 3) >= Duration::from_millis(800),
        "{:?}",
        gap(&reqs, 2, 3)
    );
    assert!(
        show_messages(&s.ed).is_empty(),
        "{:?}",
        show_messages(&s.ed)
    );
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_401_is_not_retried_and_never_shows_the_key() {
    // The body echoes the key, as some servers do.
    let body = json!({"error": {
        "message": format!("Incorrect API key provided: {KEY}. You can find your API key in your account."),
        "type": "invalid_request_error", "code": "invalid_api_key"}})
    .to_string();
    let model = ModelServer::start(vec![
        Reply::Status(401, vec![], body),
        Reply::text("must not be requested"),
    ])
    .await;
    let s = start_with(
        &model,
        json!({}),
        &[("TETHER_API_KEY", KEY), ("TETHER_LOG", "debug")],
    )
    .await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "error", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    eprintln!("error: {error}");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("Incorrect API key provided"), "{error}");
    assert!(error.contains("TETHER_API_KEY"), "says what to do: {error}");
    assert!(
        !error.contains(KEY) && !error.contains("secret-123"),
        "{error}"
    );

    let reqs = model.requests();
    assert_eq!(reqs.len(), 1, "no retry on 401");
    assert_eq!(model.script_remaining(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let shown =
        s.ed.wait_notification(|n| n.method == "window/showMessage", T)
            .await;
    let shown = shown.params["message"].as_str().unwrap_or_default();
    assert!(shown.contains("401"), "{shown}");
    for m in show_messages(&s.ed) {
        assert!(!m.contains("secret-123"), "shown: {m}");
    }
    let dump = s.ed.dump();
    let stderr = s.ed.stderr_text();
    s.ed.shutdown().await;
    assert!(!stderr.contains("secret-123"), "key in the logs:\n{stderr}");
    assert!(!dump.contains("secret-123"), "key in the protocol:\n{dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_before_the_first_byte_is_retried() {
    let model = ModelServer::start(vec![
        Reply::ResetBeforeFirstByte,
        // Headers, then a reset before any event: still nothing shown.
        Reply::TextThenReset(String::new()),
        Reply::text("Third attempt worked."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(streamed(&s.ed), "Third attempt worked.");
    assert_eq!(model.requests().len(), 3);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_after_text_is_reported_without_duplicating() {
    let model = ModelServer::start(vec![
        Reply::TextThenReset("The first half of an answer".into()),
        Reply::text("SHOULD NOT APPEAR"),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "error", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    eprintln!("error: {error}");
    assert!(
        error.contains("broke off after part of it was shown"),
        "{error}"
    );
    assert_eq!(streamed(&s.ed), "The first half of an answer", "shown once");
    assert_eq!(result["text"], "The first half of an answer");
    assert_eq!(model.requests().len(), 1, "not retried after output");
    assert_eq!(model.script_remaining(), 1);
    s.ed.wait_notification(|n| n.method == "window/showMessage", T)
        .await;
    // The partial reply is part of the history.
    let sid = result["sessionId"].as_str().expect("sid");
    let hist =
        s.ed.request("tether/history", json!({"sessionId": sid}))
            .await
            .expect("history");
    assert_eq!(hist["messages"][1]["text"], "The first half of an answer");
    s.ed.shutdown().await;
}

// ---------------------------------------------------------------------------
// Timeouts and cancellation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_hits_the_idle_timeout() {
    let model = ModelServer::start(vec![Reply::TextThenHang("Let me look".into())]).await;
    let s = start(&model, json!({"modelOptions": {"idleTimeoutSecs": 1}})).await;
    let t0 = Instant::now();
    let result = prompt(&s.ed, "hello").await;
    let took = t0.elapsed();
    assert_eq!(result["stopReason"], "error", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    eprintln!("error: {error}");
    assert!(error.contains("idle timeout"), "{error}");
    assert!(
        error.contains("idleTimeoutSecs"),
        "says what to change: {error}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(streamed(&s.ed), "Let me look");
    model.wait_closed(1, T).await;
    assert_eq!(model.requests().len(), 1);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_before_any_output_is_retried_once() {
    let model = ModelServer::start(vec![
        Reply::TextThenHang(String::new()),
        Reply::text("Second try answered."),
    ])
    .await;
    let s = start(&model, json!({"modelOptions": {"idleTimeoutSecs": 1}})).await;
    let result = prompt(&s.ed, "hello").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(streamed(&s.ed), "Second try answered.");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    assert!(gap(&reqs, 0, 1) >= Duration::from_secs(1));
    model.wait_closed(1, T).await;
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_is_not_a_total_deadline() {
    // About 35 events 40 ms apart: the reply takes longer than the 1 s idle
    // timeout, but no single gap does.
    let text = "tick ".repeat(20);
    let model = ModelServer::start(vec![Reply::SlowText {
        text: text.clone(),
        chunk_delay_ms: 40,
    }])
    .await;
    let s = start(&model, json!({"modelOptions": {"idleTimeoutSecs": 1}})).await;
    let t0 = Instant::now();
    let result = prompt(&s.ed, "count").await;
    let took = t0.elapsed();
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(result["text"], text.as_str());
    assert!(
        took > Duration::from_millis(1200),
        "the stream took {took:?}"
    );
    assert_eq!(model.requests().len(), 1);
    s.ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_slow_stream_aborts_the_request_at_once() {
    let model = ModelServer::start(vec![Reply::SlowText {
        text: "word ".repeat(400),
        chunk_delay_ms: 20,
    }])
    .await;
    let s = start(&model, json!({})).await;
    let (_id, fut) = s.ed.request_id("tether/prompt", json!({"text": "talk"}));
    let pending = tokio::spawn(fut);
    let first = s.ed.wait_update(|u| u["kind"] == "text", T).await;
    let sid = first["sessionId"].as_str().expect("sid").to_string();
    let t0 = Instant::now();
    s.ed.notify("tether/cancel", json!({"sessionId": sid}))
        .await;
    let closed = model.wait_closed(1, T).await;
    let aborted = closed.saturating_duration_since(t0);
    assert!(
        aborted < Duration::from_millis(200),
        "request aborted after {aborted:?}"
    );
    let result = pending.await.expect("join").expect("prompt result");
    assert_eq!(result["stopReason"], "cancelled");
    assert!(show_messages(&s.ed).is_empty(), "a cancel is not an error");
    s.ed.shutdown().await;
}

// ---------------------------------------------------------------------------
// Broken tool calls

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tool_arguments_go_back_to_the_model() {
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            (
                "bad".to_string(),
                "read_file".to_string(),
                "{\"path\": notes.txt}".to_string(),
            ),
            call("ghost", "summon_demon", json!({})),
        ]),
        Reply::ToolCalls(vec![call(
            "good",
            "read_file",
            json!({"path": "notes.txt"}),
        )]),
        Reply::text("Recovered: the file says alpha, beta."),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "read notes").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 3);
    let results = tool_results(&reqs[1].body);
    assert_eq!(results[0].0, "bad");
    assert!(
        results[0].1.contains("Invalid arguments"),
        "{}",
        results[0].1
    );
    assert_eq!(results[1].0, "ghost");
    assert!(results[1].1.contains("Unknown tool"), "{}", results[1].1);
    let later = tool_results(&reqs[2].body);
    assert!(later[2].1.contains("beta"), "{later:?}");
    for id in ["bad", "ghost"] {
        s.ed.wait_update(
            |u| u["kind"] == "toolCall" && u["toolCallId"] == id && u["status"] == "failed",
            T,
        )
        .await;
    }
    s.ed.shutdown().await;
}

fn cut_off_reply() -> Reply {
    Reply::RawSse {
        events: vec![tool_delta(
            json!({"index": 0, "id": "w", "type": "function",
                "function": {"name": "write_file", "arguments": "{\"path\": \"a.txt\", \"cont"}}),
        )],
        done: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_off_mid_arguments_is_retried_once_then_reported() {
    let model = ModelServer::start(vec![
        cut_off_reply(),
        Reply::ToolCalls(vec![call(
            "w",
            "write_file",
            json!({"path": "a.txt", "content": "whole"}),
        )]),
        Reply::text("Wrote it."),
        // The second prompt: cut off twice.
        cut_off_reply(),
        cut_off_reply(),
        Reply::text("must not be requested"),
    ])
    .await;
    let s = start(&model, json!({})).await;
    let result = prompt(&s.ed, "write a.txt").await;
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert_eq!(
        std::fs::read_to_string(s.ws.path().join("a.txt")).expect("a.txt"),
        "whole"
    );
    assert_eq!(model.requests().len(), 3);

    let result = prompt(&s.ed, "again").await;
    assert_eq!(result["stopReason"], "error", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    eprintln!("error: {error}");
    assert!(error.contains("cut off"), "{error}");
    assert_eq!(model.requests().len(), 5);
    assert_eq!(model.script_remaining(), 1);
    s.ed.shutdown().await;
}

// ---------------------------------------------------------------------------
// The client on its own

fn default_options() -> ModelOptions {
    let sources = Sources {
        env: Default::default(),
        init_options: None,
        workspace_root: None,
    };
    match Config::load(&sources) {
        Ok(c) => c.model_options,
        Err(e) => panic!("default config: {e}"),
    }
}

fn client(base_url: String, tweak: impl FnOnce(&mut ModelOptions)) -> ModelClient {
    let mut opts = default_options();
    tweak(&mut opts);
    ModelClient::new(base_url, "scripted".into(), Some(Secret::new(KEY)), opts)
        .expect("client")
        .with_backoff(Duration::from_millis(10), Duration::from_millis(40))
}

async fn complete(c: &ModelClient) -> (Result<tether::model::Completion, ModelError>, String) {
    let mut text = String::new();
    let mut on = |e: StreamEvent| {
        if let StreamEvent::Text(t) = e {
            text.push_str(&t);
        }
    };
    let r = c
        .complete(
            &[json!({"role": "user", "content": "hi"})],
            &[],
            &mut on,
            &CancellationToken::new(),
        )
        .await;
    (r, text)
}

#[tokio::test]
async fn client_gives_up_after_max_retries_with_a_clear_message() {
    let model = ModelServer::start(vec![
        Reply::error(500, "down"),
        Reply::error(500, "down"),
        Reply::error(503, "still down"),
        Reply::text("too late"),
    ])
    .await;
    let c = client(model.base_url(), |o| o.max_retries = 2);
    let (r, text) = complete(&c).await;
    let e = r.expect_err("gave up");
    assert!(matches!(e, ModelError::Status { status: 503, .. }), "{e}");
    assert!(
        e.to_string().contains("still down") && e.to_string().contains("try again later"),
        "{e}"
    );
    assert!(text.is_empty());
    assert_eq!(model.requests().len(), 3);
}

#[tokio::test]
async fn client_explains_a_refused_connection() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let c = client(format!("http://127.0.0.1:{port}/v1"), |o| o.max_retries = 1);
    let (r, _) = complete(&c).await;
    let e = r.expect_err("refused");
    assert!(matches!(e, ModelError::Connect { .. }), "{e:?}");
    let msg = e.to_string();
    eprintln!("error: {msg}");
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("baseUrl"),
        "{msg}"
    );
}

#[tokio::test]
async fn client_retry_after_beyond_a_minute_is_reported_not_awaited() {
    let model = ModelServer::start(vec![Reply::rate_limited(3600), Reply::text("no")]).await;
    let c = client(model.base_url(), |_| {});
    let t0 = Instant::now();
    let (r, _) = complete(&c).await;
    let e = r.expect_err("reported");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(e.to_string().contains("3600 s"), "{e}");
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn client_reads_a_json_body_with_the_wrong_content_type() {
    let body = json!({"choices": [{"message": {"role": "assistant", "content": "plain"}, "finish_reason": "stop"}]});
    let model = ModelServer::start(vec![Reply::Status(
        200,
        vec![("Content-Type".into(), "text/plain".into())],
        body.to_string(),
    )])
    .await;
    let c = client(model.base_url(), |_| {});
    let (r, text) = complete(&c).await;
    assert_eq!(r.expect("completion").text, "plain");
    assert_eq!(text, "plain");
}

#[tokio::test]
async fn client_drops_stream_options_when_the_server_rejects_them() {
    let model = ModelServer::start(vec![
        Reply::error(
            400,
            "Unrecognized request argument supplied: stream_options",
        ),
        Reply::text("ok"),
    ])
    .await;
    let c = client(model.base_url(), |_| {});
    let (r, _) = complete(&c).await;
    assert_eq!(r.expect("completion").text, "ok");
    let reqs = model.requests();
    assert!(reqs[0].body.get("stream_options").is_some());
    assert!(reqs[1].body.get("stream_options").is_none());
}

#[tokio::test]
async fn client_retries_a_provider_error_inside_the_stream() {
    let model = ModelServer::start(vec![
        Reply::RawSse {
            events: vec![
                json!({"error": {"message": "Upstream overloaded", "code": 502}}).to_string(),
            ],
            done: false,
        },
        Reply::RawSse {
            events: vec![
                json!({"error": {"message": "Context too long", "code": 400}}).to_string(),
            ],
            done: false,
        },
    ])
    .await;
    let c = client(model.base_url(), |_| {});
    let (r, _) = complete(&c).await;
    let e = r.expect_err("400 in the stream is final");
    assert!(e.to_string().contains("Context too long"), "{e}");
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn client_cancel_aborts_the_request_at_once() {
    let model = ModelServer::start(vec![Reply::SlowText {
        text: "slow ".repeat(200),
        chunk_delay_ms: 20,
    }])
    .await;
    let c = client(model.base_url(), |_| {});
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut cancelled_at = None;
    let mut on = |e: StreamEvent| {
        if matches!(e, StreamEvent::Text(_)) && cancelled_at.is_none() {
            cancelled_at = Some(Instant::now());
            trigger.cancel();
        }
    };
    let r = c
        .complete(
            &[json!({"role": "user", "content": "hi"})],
            &[],
            &mut on,
            &cancel,
        )
        .await;
    let returned = Instant::now();
    assert!(matches!(r, Err(ModelError::Cancelled)), "{r:?}");
    let t0 = cancelled_at.expect("some text came first");
    assert!(
        returned - t0 < Duration::from_millis(50),
        "{:?}",
        returned - t0
    );
    let closed = model.wait_closed(1, T).await;
    assert!(
        closed.saturating_duration_since(t0) < Duration::from_millis(200),
        "{:?}",
        closed.saturating_duration_since(t0)
    );
}
