//! Against a real llama.cpp server (its own `llama-server`, serving a small
//! real model), started by `.ci/run` and named by `TETHER_LLAMA_URL` with its
//! window in `TETHER_LLAMA_N_CTX`. Without them the tests say so and pass,
//! unless `TETHER_REQUIRE_LLAMA` is set (CI sets it when it started one).

use std::process::Command;

use serde_json::Value;

fn server() -> Option<(String, u64)> {
    let url = std::env::var("TETHER_LLAMA_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let n_ctx = std::env::var("TETHER_LLAMA_N_CTX")
        .ok()
        .and_then(|n| n.parse().ok());
    match (url, n_ctx) {
        (Some(u), Some(n)) => Some((u, n)),
        _ => {
            assert!(
                std::env::var_os("TETHER_REQUIRE_LLAMA").is_none(),
                "TETHER_REQUIRE_LLAMA is set but TETHER_LLAMA_URL / TETHER_LLAMA_N_CTX are not"
            );
            eprintln!(
                "skipped: no real llama.cpp server (set TETHER_LLAMA_URL and TETHER_LLAMA_N_CTX)"
            );
            None
        }
    }
}

#[test]
fn doctor_finds_a_real_llama_cpp_server_and_its_window() {
    let Some((url, n_ctx)) = server() else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    let out = cmd
        .args(["doctor", "--json"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("TETHER_MODEL", "gemma-3-270m")
        .env("TETHER_BASE_URL", &url)
        .current_dir(home.path())
        .output()
        .expect("run tether doctor");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], true, "{report:#}");
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
    };
    // llama.cpp serves whatever name it is asked for, and lists its file.
    assert_ne!(check("endpoint")["status"], "fail");
    let window = check("context window");
    assert_eq!(
        window["detail"].as_str().expect("detail"),
        format!("{n_ctx} tokens (from the server's /props (llama.cpp))")
    );
}

mod support;

use std::time::Duration;

use serde_json::json;
use support::editor::{ClientProfile, Editor, EditorConfig};

const REAL_T: Duration = Duration::from_secs(600);

async fn real_editor(
    url: &str,
    ws: &std::path::Path,
    data: &std::path::Path,
    opts: Value,
) -> Editor {
    let mut o = json!({
        "model": "gemma-3-270m",
        "baseUrl": url,
        "dataDir": data,
        // Greedy decoding: the base model's text is then the same every run.
        "modelOptions": {"temperature": 0.0, "maxTokens": 48},
    });
    if let (Some(o), Some(e)) = (o.as_object_mut(), opts.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    let cfg =
        EditorConfig::new(env!("CARGO_BIN_EXE_tether"), ClientProfile::VsCode, ws).init_options(o);
    Editor::start(cfg).await.0
}

fn usages(ed: &Editor) -> Vec<(u64, u64)> {
    ed.updates()
        .iter()
        .filter(|u| u["kind"] == "usage")
        .map(|u| {
            (
                u["promptTokens"].as_u64().unwrap_or(0),
                u["completionTokens"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rambling_reply_from_a_real_server_is_capped() {
    let Some((url, _)) = server() else {
        return;
    };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let ed = real_editor(&url, ws.path(), data.path(), json!({})).await;
    let r = ed
        .request_with_timeout(
            "tether/prompt",
            json!({"text": "Write a very long story about a dragon who counts to one thousand."}),
            REAL_T,
        )
        .await
        .expect("prompt result");
    let text = r["text"].as_str().unwrap_or("");
    let capped = r["stopReason"] == "end_turn" && text.contains("output limit of 48 tokens");
    let looped =
        r["stopReason"] == "error" && r["error"].as_str().unwrap_or("").contains("repeating");
    assert!(capped || looped, "the reply was ended by Tether: {r}");
    for (_, completion) in usages(&ed) {
        assert!(completion <= 48, "{completion} tokens");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_outgrows_a_real_window_compacts_instead_of_failing() {
    let Some((url, n_ctx)) = server() else {
        return;
    };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let ed = real_editor(&url, ws.path(), data.path(), json!({})).await;
    let mut session = Value::Null;
    // Each prompt is about a fifth of the window (the tool schemas take a
    // third of it): the fourth prompt cannot fit beside the others.
    let per_prompt = (n_ctx as usize) * 4 / 5;
    for turn in 0..4 {
        let notes: String = (0..)
            .map(|i| format!("Note {turn}.{i}: item {i} weighs {} grams. ", i * 7 + turn))
            .take_while({
                let mut len = 0;
                move |s: &String| {
                    len += s.len();
                    len < per_prompt
                }
            })
            .collect();
        let text = format!("{notes}\nSummarise these notes in one line.");
        let r = ed.prompt_in(&mut session, &text, REAL_T).await;
        assert_ne!(r["stopReason"], "error", "turn {turn}: {r}");
    }
    let compactions: Vec<_> = ed
        .updates()
        .into_iter()
        .filter(|u| u["kind"] == "compaction")
        .collect();
    assert!(!compactions.is_empty(), "the session was compacted");
    for (prompt, completion) in usages(&ed) {
        assert!(
            prompt + completion <= n_ctx,
            "{prompt} + {completion} within {n_ctx}"
        );
    }
}
