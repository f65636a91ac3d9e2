//! Subagents: `delegate`, with approvals that reach the person, concurrent
//! children with their own sessions, and cancellation that reaches them all.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{choose_action, ClientProfile, Editor, EditorConfig};
use support::model::{call, messages, tool_names, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(30);

fn cfg(root: &Path, model: &ModelServer, data: &Path, extra: Value) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::HelixMaster,
        root,
        model,
        data,
        extra,
    )
}

/// Who sent a request: `None` for the main agent, else the child's goal.
fn child_goal(body: &Value) -> Option<String> {
    let msgs = messages(body);
    let system = msgs
        .iter()
        .find(|(r, _)| r == "system")
        .map(|(_, t)| t.clone())?;
    if !system.contains("You are a subagent") {
        return None;
    }
    msgs.iter()
        .find(|(r, _)| r == "user")
        .map(|(_, t)| t.lines().next().unwrap_or("").to_string())
}

fn tool_count(body: &Value) -> usize {
    messages(body).iter().filter(|(r, _)| r == "tool").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_children_two_ask_and_each_outcome_matches_its_answer() {
    let ws = support::workspace();
    for d in ["two", "three"] {
        support::write_file(ws.path(), &format!("{d}/x"), "x");
    }
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start_with(|body| match child_goal(body) {
        None if tool_count(body) == 0 => Reply::ToolCalls(vec![call(
            "del",
            "delegate",
            json!({"tasks": [
                {"goal": "one: read the readme", "context": "just read it"},
                {"goal": "two: remove two/"},
                {"goal": "three: remove three/"}
            ]}),
        )]),
        None => Reply::Text("all children reported".into()),
        Some(goal) => match (goal.split(':').next().unwrap_or(""), tool_count(body)) {
            ("one", 0) => {
                Reply::ToolCalls(vec![call("r", "read_file", json!({"path": "README.md"}))])
            }
            ("two", 0) => Reply::ToolCalls(vec![call(
                "x",
                "run_command",
                json!({"command": "rm -rf two"}),
            )]),
            ("three", 0) => Reply::ToolCalls(vec![call(
                "y",
                "run_command",
                json!({"command": "rm -rf three"}),
            )]),
            (name, _) => {
                let last = tool_results(body)
                    .last()
                    .map(|r| r.1.clone())
                    .unwrap_or_default();
                Reply::Text(format!(
                    "{name} finished: {}",
                    last.lines().next().unwrap_or("")
                ))
            }
        },
    })
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "split the work"}));
    let pending = tokio::spawn(fut);
    let mut answered = Vec::new();
    for _ in 0..2 {
        let d = ed.next_server_request("window/showMessageRequest", T).await;
        let msg = d.params["message"].as_str().unwrap_or("").to_string();
        let (who, title) = if msg.contains("rm -rf two") {
            ("subagent 2 of 3: two: remove two/", "Allow once")
        } else {
            ("subagent 3 of 3: three: remove three/", "Deny")
        };
        assert!(msg.contains(who), "the dialog names its child: {msg}");
        answered.push(who);
        ed.reply(
            d.id.clone(),
            Ok(choose_action(&d.params, title).expect("a")),
        )
        .await;
    }
    let r = pending.await.expect("join").expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    assert!(!ws.path().join("two").exists(), "child 2 was allowed");
    assert!(ws.path().join("three/x").exists(), "child 3 was denied");
    let dialogs: Vec<_> = ed
        .server_requests()
        .into_iter()
        .filter(|r| r.method == "window/showMessageRequest")
        .collect();
    assert_eq!(dialogs.len(), 2);
    assert!(
        dialogs[1].at > dialogs[0].answered_at.expect("answered"),
        "one at a time"
    );
    // The approval updates carry the agent label.
    let agents: Vec<String> = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "approval" && u["status"] == "asked")
        .map(|u| u["agent"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(agents.len(), 2);
    assert!(agents.iter().all(|a| a.starts_with("subagent ")));
    // The parent's result lists all three, in task order.
    let parent_final = model
        .requests()
        .into_iter()
        .rfind(|r| child_goal(&r.body).is_none())
        .expect("parent request");
    let results = tool_results(&parent_final.body);
    let report: Value = serde_json::from_str(&results[0].1).expect("json report");
    let tasks = report["results"].as_array().expect("results");
    let goals: Vec<&str> = tasks
        .iter()
        .map(|t| t["goal"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        goals,
        [
            "one: read the readme",
            "two: remove two/",
            "three: remove three/"
        ]
    );
    assert!(tasks.iter().all(|t| t["status"] == "completed"));
    assert!(tasks[1]["summary"]
        .as_str()
        .unwrap_or("")
        .contains("exit code 0"));
    assert!(tasks[2]["summary"]
        .as_str()
        .unwrap_or("")
        .contains("Denied"));
    for t in tasks {
        assert!(
            t["toolCalls"] == 1 && t["durationMs"].is_u64() && t["tokens"].is_object(),
            "{t}"
        );
    }
    // Child sessions exist, with the parent link, and have their own history.
    let parent_sid = r["sessionId"].as_str().expect("sid");
    let list = ed
        .request("tether/sessions", json!({}))
        .await
        .expect("sessions");
    let children: Vec<&Value> = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["parentId"] == parent_sid)
        .collect();
    assert_eq!(children.len(), 3);
    let child_sid = tasks[0]["childSessionId"].as_str().expect("child sid");
    let hist = ed
        .request("tether/history", json!({"sessionId": child_sid}))
        .await
        .expect("history");
    let first = &hist["messages"][0];
    assert_eq!(first["role"], "user");
    assert!(first["text"]
        .as_str()
        .unwrap_or("")
        .contains("just read it"));
    assert!(
        !first["text"]
            .as_str()
            .unwrap_or("")
            .contains("split the work"),
        "not the parent's transcript"
    );
    let started = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "subagent" && u["status"] == "started")
        .count();
    let completed = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "subagent" && u["status"] == "completed")
        .count();
    assert_eq!((started, completed), (3, 3));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_at_max_depth_gets_no_delegate_tool_and_no_todo() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start_with(|body| match child_goal(body) {
        None if tool_count(body) == 0 => {
            Reply::ToolCalls(vec![call("d", "delegate", json!({"goal": "look around"}))])
        }
        None => Reply::Text("ok".into()),
        Some(_) if tool_count(body) == 0 => {
            // The child tries to delegate anyway: an unknown tool to it.
            Reply::ToolCalls(vec![call("dd", "delegate", json!({"goal": "deeper"}))])
        }
        Some(_) => Reply::Text(tool_results(body)[0].1.clone()),
    })
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let done = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &done).await;
    let reqs = model.requests();
    let parent = reqs
        .iter()
        .find(|r| child_goal(&r.body).is_none())
        .expect("parent");
    let child = reqs
        .iter()
        .find(|r| child_goal(&r.body).is_some())
        .expect("child");
    assert!(tool_names(&parent.body).contains(&"delegate".to_string()));
    assert!(tool_names(&parent.body).contains(&"todo".to_string()));
    assert!(
        !tool_names(&child.body).contains(&"delegate".to_string()),
        "no delegate at max depth"
    );
    assert!(!tool_names(&child.body).contains(&"todo".to_string()));
    let child_second = reqs
        .iter()
        .filter(|r| child_goal(&r.body).is_some())
        .nth(1)
        .expect("child 2nd");
    assert!(tool_results(&child_second.body)[0]
        .1
        .contains("Unknown tool `delegate`"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_approvals_deny_denies_children_without_a_dialog() {
    let ws = support::workspace();
    support::write_file(ws.path(), "keep/x", "x");
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start_with(|body| match child_goal(body) {
        None if tool_count(body) == 0 => {
            Reply::ToolCalls(vec![call("d", "delegate", json!({"goal": "clean keep"}))])
        }
        None => Reply::Text("ok".into()),
        Some(_) if tool_count(body) == 0 => Reply::ToolCalls(vec![call(
            "x",
            "run_command",
            json!({"command": "rm -rf keep"}),
        )]),
        Some(_) => Reply::Text(tool_results(body)[0].1.clone()),
    })
    .await;
    let (ed, _) = Editor::start(cfg(
        ws.path(),
        &model,
        data.path(),
        json!({"delegation": {"approvals": "deny"}}),
    ))
    .await;
    let done = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &done).await;
    assert!(ws.path().join("keep/x").exists());
    assert!(ed
        .server_requests()
        .iter()
        .all(|r| r.method != "window/showMessageRequest"));
    let child_second = model
        .requests()
        .into_iter()
        .filter(|r| child_goal(&r.body).is_some())
        .nth(1)
        .expect("child second request");
    let told = &tool_results(&child_second.body)[0].1;
    assert!(told.contains("delegation.approvals = \"deny\""), "{told}");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_parent_cancels_every_child_and_their_processes() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let tag = std::process::id();
    let model = ModelServer::start_with(move |body| match child_goal(body) {
        None => Reply::ToolCalls(vec![call(
            "d",
            "delegate",
            json!({"tasks": [{"goal": "a"}, {"goal": "b"}, {"goal": "c"}, {"goal": "d"}]}),
        )]),
        Some(g) => Reply::ToolCalls(vec![call(
            "s",
            "run_command",
            json!({"command": format!("sleep 60.{tag}{}; echo x", g.len() + g.as_bytes()[0] as usize)}),
        )]),
    })
    .await;
    let (ed, _) = Editor::start(cfg(
        ws.path(),
        &model,
        data.path(),
        json!({"delegation": {"maxChildren": 3}}),
    ))
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let pending = tokio::spawn(fut);
    let needle = format!("sleep 60.{tag}");
    assert!(
        support::wait_until(|| support::pids_matching(&needle).len() >= 3, T).await,
        "three children run at once (maxChildren 3), the fourth queues"
    );
    let sid = ed.wait_update(|u| u["kind"] == "subagent", T).await["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();
    let t0 = Instant::now();
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r = pending.await.expect("join").expect("r");
    support::turn_ended(&ed, &r).await;
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(r["stopReason"], "cancelled");
    assert!(
        support::pids_matching(&needle).is_empty(),
        "no process left"
    );
    let ended: Vec<String> = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "subagent" && u["status"] != "started")
        .map(|u| u["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        ended,
        ["cancelled", "cancelled", "cancelled"],
        "the three started children ended cancelled"
    );
    ed.shutdown().await;
}

/// 16 children × 20 tool calls each, all at once: every message stored, every
/// child completes, no deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_children_with_twenty_calls_each_all_complete_and_are_stored() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start_with(|body| match child_goal(body) {
        None if tool_count(body) == 0 => Reply::ToolCalls(vec![call(
            "d",
            "delegate",
            json!({"tasks": (0..16).map(|i| json!({"goal": format!("child {i}")})).collect::<Vec<_>>()}),
        )]),
        None => Reply::Text("stress done".into()),
        Some(g) => {
            let n = tool_count(body);
            if n < 20 {
                let tool = match n % 3 {
                    0 => call(&format!("c{n}"), "read_file", json!({"path": "README.md"})),
                    1 => call(&format!("c{n}"), "search", json!({"pattern": "add"})),
                    _ => call(&format!("c{n}"), "run_command", json!({"command": "true"})),
                };
                Reply::ToolCalls(vec![tool])
            } else {
                Reply::Text(format!("{g} did 20 calls"))
            }
        }
    })
    .await;
    let (ed, _) = Editor::start(cfg(
        ws.path(),
        &model,
        data.path(),
        json!({"delegation": {"maxChildren": 16}}),
    ))
    .await;
    let r = ed
        .request_with_timeout(
            "tether/prompt",
            json!({"text": "stress"}),
            Duration::from_secs(120),
        )
        .await
        .expect("r");
    assert_eq!(r["stopReason"], "end_turn");
    let parent_final = model
        .requests()
        .into_iter()
        .rfind(|r| child_goal(&r.body).is_none())
        .expect("parent");
    let report: Value =
        serde_json::from_str(&tool_results(&parent_final.body)[0].1).expect("report");
    let tasks = report["results"].as_array().expect("results");
    assert_eq!(tasks.len(), 16);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t["goal"], format!("child {i}"));
        assert_eq!(t["status"], "completed", "{t}");
        assert_eq!(t["toolCalls"], 20);
        let sid = t["childSessionId"].as_str().expect("sid");
        let hist = ed
            .request("tether/history", json!({"sessionId": sid}))
            .await
            .expect("history");
        // user + 20 × (assistant + tool) + final assistant
        assert_eq!(
            hist["messages"].as_array().map(Vec::len),
            Some(42),
            "child {i}"
        );
    }
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_follows_the_projects_agents_md_like_its_parent() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    support::write_file(ws.path(), "AGENTS.md", "Always run `make lint` first.\n");
    let model = ModelServer::start_with(|body| match child_goal(body) {
        None if tool_count(body) == 0 => {
            Reply::ToolCalls(vec![call("d", "delegate", json!({"goal": "check style"}))])
        }
        _ => Reply::Text("done".into()),
    })
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let done = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &done).await;
    let reqs = model.requests();
    let child = reqs
        .iter()
        .find(|r| child_goal(&r.body).is_some())
        .expect("the child asked the model");
    let system = messages(&child.body)
        .into_iter()
        .find(|(r, _)| r == "system")
        .map(|(_, t)| t)
        .expect("a system message");
    let (role, rules) = (
        system.find("You are a subagent").expect("the child's role"),
        system
            .find("Always run `make lint` first.")
            .unwrap_or_else(|| panic!("the project's AGENTS.md reaches the child: {system}")),
    );
    assert!(role < rules, "the role comes first: {system}");
    assert!(system.contains("git: branch") || system.contains(std::env::consts::OS));
    ed.shutdown().await;
}
