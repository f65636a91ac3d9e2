//! Secrets never stored (docs/DESIGN.md §7): the value of an environment variable
//! named like `*_TOKEN` that shows up in a file the model reads, in a search
//! hit or in a command's output is redacted before the model sees it and
//! before the store keeps it — not a byte of it reaches the data dir.

mod support;

use serde_json::json;
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Reply};

const SECRET: &str = "tok-4f9a2c81d7e6b035";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_tool_output_never_reach_the_model_or_the_store() {
    let ws = support::workspace();
    support::write_file(
        ws.path(),
        "deploy.env",
        &format!("REGION=eu\nDEPLOY_TOKEN={SECRET}\n"),
    );
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("c1", "read_file", json!({"path": "deploy.env"})),
            call("c2", "search", json!({"pattern": "DEPLOY_TOKEN"})),
            call(
                "c3",
                "run_command",
                json!({"command": "cat deploy.env; echo \"$DEPLOY_TOKEN\""}),
            ),
        ]),
        Reply::Text("The region is eu.".into()),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .env("DEPLOY_TOKEN", SECRET)
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request(
            "tether/prompt",
            json!({"text": "which region do we deploy to?"}),
        )
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");

    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let results = tool_results(&reqs[1].body);
    assert_eq!(results.len(), 3);
    for (id, text) in &results {
        assert!(!text.contains(SECRET), "{id} leaked to the model: {text}");
    }
    assert!(
        results[0].1.contains("DEPLOY_TOKEN=[REDACTED]"),
        "{}",
        results[0].1
    );
    assert!(results[1].1.contains("[REDACTED]"), "{}", results[1].1);
    assert!(
        results[2].1.contains("[REDACTED]"),
        "the command ran: {}",
        results[2].1
    );
    for u in ed.updates() {
        assert!(!u.to_string().contains(SECRET), "leaked to the editor: {u}");
    }
    ed.shutdown().await;

    // Not in any byte of the database, its WAL or anything else stored.
    let mut stored = 0;
    for entry in std::fs::read_dir(data.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        stored += bytes.len();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
    assert!(stored > 0, "history was saved");
}

/// Rewriting a whole file the model read with its secrets redacted would write
/// the placeholder over them: `write_file` refuses and says why, the file keeps
/// its secret, and `edit_file` away from the secret still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_a_file_with_redacted_secrets_is_refused() {
    let ws = support::workspace();
    let original = format!("region: eu\ntoken: {SECRET}\n");
    support::write_file(ws.path(), "deploy.yaml", &original);
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "r1",
            "read_file",
            json!({"path": "deploy.yaml"}),
        )]),
        Reply::ToolCalls(vec![call(
            "w1",
            "write_file",
            json!({"path": "deploy.yaml", "content": "region: us\ntoken: [REDACTED]\n"}),
        )]),
        Reply::ToolCalls(vec![call(
            "e1",
            "edit_file",
            json!({"path": "deploy.yaml", "old_text": "region: eu", "new_text": "region: us"}),
        )]),
        Reply::Text("Moved to us.".into()),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .env("DEPLOY_TOKEN", SECRET)
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request("tether/prompt", json!({"text": "deploy to us instead"}))
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 4);
    let read = tool_results(&reqs[1].body);
    assert!(read[0].1.contains("token: [REDACTED]"), "{}", read[0].1);
    // Each request carries the whole conversation: the newest result is last.
    let newest = |i: usize| {
        tool_results(&reqs[i].body)
            .last()
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    let write = newest(2);
    assert!(
        write.contains("holds secret values") && write.contains("Nothing was changed"),
        "{write}"
    );
    let edit = newest(3);
    assert!(
        edit.contains("deploy.yaml") && !edit.contains("holds secret"),
        "{edit}"
    );
    let now = std::fs::read_to_string(ws.path().join("deploy.yaml")).expect("file");
    assert_eq!(now, format!("region: us\ntoken: {SECRET}\n"));
    ed.shutdown().await;
}
