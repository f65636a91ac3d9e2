//! `tether sessions list|show|search|delete|export` on the real binary, over
//! a data dir filled through the store, including the errors a person can
//! make (unknown id, unusable data dir): a clear message and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tether::protocol::{ApprovalStatus, Role, ToolStatus};
use tether::store::{now_ms, ApprovalScope, Store, StoredMessage, Write};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn tether(data: &Path, home: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .arg("sessions")
        .args(args)
        .env("HOME", home)
        .env("TETHER_DATA_DIR", data)
        .output()
        .expect("run tether");
    Run {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn message(role: &str, content: &str) -> StoredMessage {
    StoredMessage {
        role: Role::parse(role).expect("a role"),
        content: content.into(),
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

async fn fill(data: &Path) {
    let store = Store::open(data);
    let create = |id: &str, parent: Option<&str>| Write::CreateSession {
        id: id.into(),
        parent_id: parent.map(str::to_string),
        title: String::new(),
        workspace: "/ws".into(),
        model: "scripted".into(),
    };
    let append = |sid: &str, m: StoredMessage| Write::AppendMessage {
        session_id: sid.into(),
        message: m,
    };
    let mut call = message("assistant", "Running the build.");
    call.tool_calls = Some(json!([{"id": "c1", "type": "function",
        "function": {"name": "run_command", "arguments": "{\"command\": \"cargo build\"}"}}]));
    let mut out = message("tool", "error: linker `quokka-cc` not found");
    out.tool_call_id = Some("c1".into());
    for w in [
        create("alpha", None),
        append(
            "alpha",
            message("user", "Why does the build fail?\nDetails below."),
        ),
        append("alpha", call),
        append("alpha", out),
        append("alpha", message("assistant", "Install quokka-cc.")),
        Write::ToolRun {
            session_id: "alpha".into(),
            tool_call_id: "c1".into(),
            tool: "run_command".into(),
            input: "{\"command\": \"cargo build\"}".into(),
            status: ToolStatus::Failed,
            output_excerpt: "error: linker".into(),
            duration_ms: 12,
        },
        Write::AddUsage {
            session_id: "alpha".into(),
            prompt_tokens: 100,
            completion_tokens: 20,
        },
        create("beta", None),
        append("beta", message("user", "Rename beta to gamma")),
        create("beta-sub", Some("beta")),
        append("beta-sub", message("user", "find every beta")),
        Write::Approval {
            session_id: "beta-sub".into(),
            approval_id: "a1".into(),
            request: "sed -i s/beta/gamma/ notes.txt".into(),
            decision: ApprovalStatus::Allowed,
            scope: ApprovalScope::Once,
            agent: Some("renamer".into()),
        },
    ] {
        store.write(w).await.expect("fill");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_commands_list_show_search_export_and_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, home) = (tmp.path().join("data"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).expect("home");
    fill(&data).await;

    let list = tether(&data, &home, &["list"]);
    assert!(list.ok, "{}", list.stderr);
    let lines: Vec<Vec<&str>> = list
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    let alpha = lines.iter().find(|l| l[0] == "alpha").expect("alpha");
    assert_eq!(alpha[2], "4 messages");
    assert_eq!(alpha[3], "Why does the build fail?");
    let sub = lines.iter().find(|l| l[0] == "beta-sub").expect("beta-sub");
    assert_eq!(sub[3], "↳ find every beta");
    let limited = tether(&data, &home, &["list", "--limit", "1"]);
    assert_eq!(limited.stdout.lines().count(), 1);

    let show = tether(&data, &home, &["show", "alpha"]);
    assert!(show.ok, "{}", show.stderr);
    for needle in [
        "Session alpha: Why does the build fail?",
        "model scripted",
        "tokens 100 in / 20 out",
        "user: Why does the build fail?",
        "→ run_command {\"command\": \"cargo build\"}",
        "tool (c1): error: linker `quokka-cc` not found",
        "assistant: Install quokka-cc.",
    ] {
        assert!(
            show.stdout.contains(needle),
            "{needle:?} in\n{}",
            show.stdout
        );
    }
    let show_beta = tether(&data, &home, &["show", "beta"]);
    assert!(show_beta.stdout.contains("subagents: beta-sub"));

    let search = tether(&data, &home, &["search", "quokka"]);
    assert!(search.ok, "{}", search.stderr);
    let hits: Vec<&str> = search.stdout.lines().collect();
    assert_eq!(hits.len(), 1, "{}", search.stdout);
    assert!(hits[0].starts_with("alpha\tWhy does the build fail?\t"));
    assert!(hits[0].contains("[quokka"), "{}", hits[0]);
    // Several words without quotes; every one must occur.
    let both = tether(&data, &home, &["search", "linker", "quokka"]);
    assert_eq!(both.stdout.lines().count(), 1);
    let none = tether(&data, &home, &["search", "ocelot"]);
    assert!(none.ok);
    assert!(none.stdout.is_empty());
    assert!(
        none.stderr.contains("no session matches"),
        "{}",
        none.stderr
    );

    let export = tether(&data, &home, &["export", "alpha"]);
    assert!(export.ok, "{}", export.stderr);
    let v: Value = serde_json::from_str(&export.stdout).expect("export is JSON");
    assert_eq!(v["session"]["id"], "alpha");
    assert_eq!(v["session"]["title"], "Why does the build fail?");
    assert_eq!(v["session"]["promptTokens"], 100);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        v["messages"][1]["toolCalls"][0]["function"]["name"],
        "run_command"
    );
    assert_eq!(v["messages"][2]["toolCallId"], "c1");
    assert_eq!(v["messages"][3]["seq"], 4);
    assert_eq!(v["toolRuns"][0]["durationMs"], 12);
    let sub = tether(&data, &home, &["export", "beta-sub"]);
    let v: Value = serde_json::from_str(&sub.stdout).expect("export is JSON");
    assert_eq!(v["session"]["parentId"], "beta");
    assert_eq!(v["approvals"][0]["agent"], "renamer");

    let delete = tether(&data, &home, &["delete", "beta"]);
    assert!(delete.ok, "{}", delete.stderr);
    assert_eq!(
        delete.stdout.trim(),
        "deleted beta and 1 subagent session(s)"
    );
    let list = tether(&data, &home, &["list"]);
    assert_eq!(list.stdout.lines().count(), 1);
    assert!(list.stdout.starts_with("alpha\t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_commands_fail_clearly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, home) = (tmp.path().join("data"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).expect("home");
    fill(&data).await;
    for cmd in ["show", "export", "delete"] {
        let r = tether(&data, &home, &[cmd, "nope"]);
        assert!(!r.ok, "{cmd} nope must fail");
        assert!(r.stdout.is_empty(), "{cmd}: {}", r.stdout);
        assert!(
            r.stderr
                .contains("no session nope; see `tether sessions list`"),
            "{cmd}: {}",
            r.stderr
        );
    }
    // Nothing was deleted by the failed delete.
    assert_eq!(tether(&data, &home, &["list"]).stdout.lines().count(), 3);

    let usage = tether(&data, &home, &["search"]);
    assert!(!usage.ok, "a search needs words");

    let empty = tmp.path().join("fresh");
    let r = tether(&empty, &home, &["list"]);
    assert!(r.ok);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("no sessions yet"), "{}", r.stderr);

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let r = tether(&file.join("data"), &home, &["list"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("history is not being saved"),
        "{}",
        r.stderr
    );
}
