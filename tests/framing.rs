//! A bad frame from the editor costs that frame only: after each kind of
//! broken `Content-Length` framing, the real server answers the next 30
//! requests.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::ModelServer;

/// Above 100000, so that a length of 100000 is waited for, not refused.
const LIMIT: usize = 200 * 1024;

fn cfg(root: &Path, model: &ModelServer, data: &Path) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        root,
        model,
        data,
        json!({"maxMessageBytes": LIMIT}),
    )
}

fn framed(header: &str, body: &str) -> Vec<u8> {
    let mut f = header.as_bytes().to_vec();
    f.extend_from_slice(body.as_bytes());
    f
}

/// The broken frames: a real request's body behind a wrong header.
fn bad_frames() -> Vec<(&'static str, Vec<u8>)> {
    let body = r#"{"jsonrpc":"2.0","id":999999,"method":"tether/sessions","params":{"limit":1}}"#;
    let n = body.len();
    let oversize = format!(
        r#"{{"jsonrpc":"2.0","id":999998,"method":"tether/sessions","params":{{"query":"{}"}}}}"#,
        "x".repeat(LIMIT + 1)
    );
    vec![
        (
            "10 bytes short",
            framed(&format!("Content-Length: {}\r\n\r\n", n - 10), body),
        ),
        (
            "10 bytes long",
            framed(&format!("Content-Length: {}\r\n\r\n", n + 10), body),
        ),
        ("100000", framed("Content-Length: 100000\r\n\r\n", body)),
        (
            "a terabyte",
            framed("Content-Length: 1000000000000\r\n\r\n", body),
        ),
        (
            "non-numeric",
            framed("Content-Length: twelve\r\n\r\n", body),
        ),
        ("missing header", framed("\r\n", body)),
        (
            "oversize",
            framed(
                &format!("Content-Length: {}\r\n\r\n", oversize.len()),
                &oversize,
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_any_bad_frame_the_next_30_requests_are_answered() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![]).await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path())).await;
    for (name, bad) in bad_frames() {
        let before = reports(&ed);
        ed.send_raw(&bad).await;
        let pending: Vec<_> = (0..30)
            .map(|_| {
                ed.request_id_with_timeout(
                    "tether/sessions",
                    json!({"limit": 1}),
                    Duration::from_secs(30),
                )
                .1
            })
            .collect();
        let answers = futures::future::join_all(pending).await;
        let answered = answers.iter().filter(|a| a.is_ok()).count();
        assert_eq!(answered, 30, "{name}: {answers:?}\n{}", ed.dump());
        // The broken frame was reported, once, in the log.
        let logged = ed
            .wait_notifications(
                |n| {
                    n.method == "window/logMessage"
                        && n.params["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("malformed message"))
                },
                before + 1,
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(logged.len(), before + 1, "{name}: reported once");
        eprintln!(
            "{name}: {}",
            logged
                .last()
                .map(|n| n.params["message"].clone())
                .unwrap_or(Value::Null)
        );
    }
    let oversize = ed.notifications().iter().any(|n| {
        n.params["message"]
            .as_str()
            .is_some_and(|m| m.contains("maxMessageBytes"))
    });
    assert!(oversize, "the limit is named:\n{}", ed.dump());
    ed.shutdown().await;
}

fn reports(ed: &Editor) -> usize {
    ed.notifications()
        .iter()
        .filter(|n| {
            n.method == "window/logMessage"
                && n.params["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("malformed message"))
        })
        .count()
}
