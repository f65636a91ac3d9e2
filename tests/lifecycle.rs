//! Nothing a command starts outlives it: daemonised grandchildren die at the
//! end of the command, on cancel, when the editor quits or vanishes, and when
//! the server is killed with SIGKILL. Real processes, found in /proc by a
//! marker argument no other process has.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, ModelServer, Reply};

const T: Duration = Duration::from_secs(20);

fn cfg(root: &Path, model: &ModelServer, data: &Path) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        root,
        model,
        data,
        // The tricks are judged by the classifier like any command; this
        // test is about what happens once they run.
        json!({"approval": {"mode": "allow"}}),
    )
}

/// The ways a shell command can leave something running behind it. Each
/// sleeps for a unique number of seconds: the marker.
fn tricks(scenario: u32) -> Vec<(&'static str, String)> {
    let m = |k: u32| format!("{}.{scenario}{k}", std::process::id());
    vec![
        ("setsid &", format!("setsid sleep {} &", m(1))),
        ("setsid -f", format!("setsid -f sleep {}", m(2))),
        (
            "nohup … &",
            format!("nohup sleep {} >/dev/null 2>&1 &", m(3)),
        ),
        ("double fork", format!("( (sleep {} &) & )", m(4))),
        ("disown", format!("sleep {} & disown", m(5))),
        (
            "bash -c '… &' with stdio redirected",
            format!("bash -c 'sleep {} >/dev/null 2>&1 </dev/null &'", m(6)),
        ),
        (
            "setsid -f, ignoring TERM and HUP",
            format!(
                "setsid -f sh -c 'trap \"\" TERM HUP INT; sleep {}' >/dev/null 2>&1",
                m(7)
            ),
        ),
        (
            "setsid, double fork, own session and group",
            format!(
                "setsid bash -c '(sleep {} &) ; exit' </dev/null >/dev/null 2>&1 &",
                m(8)
            ),
        ),
    ]
}

/// Live processes with `marker` as one of their arguments.
fn alive(marker: &str) -> Vec<support::ProcInfo> {
    support::processes()
        .into_iter()
        .filter(|p| p.state != 'Z')
        .filter(|p| {
            p.cmdline
                .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                .any(|t| t == marker)
        })
        .collect()
}

fn markers(scenario: u32) -> Vec<String> {
    (1..=8)
        .map(|k| format!("{}.{scenario}{k}", std::process::id()))
        .collect()
}

fn survivors(scenario: u32) -> Vec<String> {
    markers(scenario)
        .iter()
        .zip(tricks(scenario))
        .flat_map(|(m, (name, _))| {
            alive(m)
                .into_iter()
                .map(move |p| format!("{name}: pid {} ppid {} `{}`", p.pid, p.ppid, p.cmdline))
        })
        .collect()
}

/// Kills whatever a failed scenario left behind, so a red test does not
/// leave twelve-hour sleeps on the machine.
struct Cleanup(u32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for m in markers(self.0)
            .iter()
            .chain([&format!("{}.{}9", std::process::id(), self.0)])
        {
            for p in alive(m) {
                // SAFETY: kill(2) on a process this test started (unique marker).
                unsafe {
                    libc::kill(p.pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Polls (never a fixed sleep) until no trick of `scenario` is alive.
async fn none_survive(scenario: u32, within: Duration) -> Result<(), Vec<String>> {
    if support::wait_until(|| survivors(scenario).is_empty(), within).await {
        Ok(())
    } else {
        Err(survivors(scenario))
    }
}

/// A server whose model runs every trick, then (`hold`) stays in the
/// command until something stops it. Returns once every trick is running.
async fn started(
    scenario: u32,
    hold: bool,
) -> (Editor, ModelServer, tempfile::TempDir, tempfile::TempDir) {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let mut script: Vec<String> = tricks(scenario).into_iter().map(|(_, t)| t).collect();
    if hold {
        // Wait until every trick's sleep exists, then block: the test sees
        // all of them running while the command is still going.
        let all: Vec<String> = markers(scenario)
            .iter()
            .map(|m| format!("pgrep -f 'sleep {m}' >/dev/null"))
            .collect();
        script.push(format!(
            "until {}; do sleep 0.05; done; echo ready; sleep {}.{scenario}9",
            all.join(" && "),
            std::process::id()
        ));
    } else {
        script.push("echo done".into());
    }
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "tricks",
            "run_command",
            json!({"command": script.join("\n")}),
        )]),
        Reply::Text("finished".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path())).await;
    (ed, model, ws, data)
}

async fn wait_all_running(ed: &Editor, scenario: u32) {
    let all = || markers(scenario).iter().all(|m| !alive(m).is_empty());
    assert!(
        support::wait_until(all, T).await,
        "every trick started; missing: {:?}\n{}",
        markers(scenario)
            .iter()
            .filter(|m| alive(m).is_empty())
            .collect::<Vec<_>>(),
        ed.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_command_daemonised_survives_its_end() {
    let _cleanup = Cleanup(1);
    let (ed, model, _ws, _data) = started(1, false).await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn", "{r}");
    let out = &support::model::tool_results(&model.requests()[1].body)[0].1;
    assert!(out.contains("done"), "the command ran to its end: {out}");
    // The supervisor kills and reaps before it exits, and the call waits for
    // it: by the end of the turn nothing is left.
    assert_eq!(survivors(1), Vec::<String>::new(), "at the end of the turn");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_survives_a_cancel() {
    let _cleanup = Cleanup(2);
    let (ed, _model, _ws, _data) = started(2, true).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let pending = tokio::spawn(fut);
    wait_all_running(&ed, 2).await;
    let sid = ed.wait_update(|u| u["kind"] == "toolCall", T).await["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r = pending.await.expect("join").expect("prompt");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "cancelled", "{r}");
    assert_eq!(survivors(2), Vec::<String>::new(), "when the turn ended");
    assert!(
        support::descendants(ed.pid() as i32).is_empty(),
        "no child of the server is left"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_survives_the_editor_quitting_mid_command() {
    let _cleanup = Cleanup(3);
    let (ed, model, _ws, _data) = started(3, true).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let _pending = tokio::spawn(fut);
    wait_all_running(&ed, 3).await;
    let t0 = Instant::now();
    // shutdown (answered once every turn ended), exit, stdin closed.
    ed.shutdown().await;
    let took = t0.elapsed();
    eprintln!("shutdown + exit took {took:?}");
    assert_eq!(survivors(3), Vec::<String>::new(), "when the server exited");
    assert_eq!(model.requests().len(), 1, "no model call after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_vanishing_ends_every_turn_at_once() {
    let _cleanup = Cleanup(4);
    let (mut ed, model, _ws, _data) = started(4, true).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let _pending = tokio::spawn(fut);
    wait_all_running(&ed, 4).await;
    let t0 = Instant::now();
    // No shutdown, no exit: the pipe just closes.
    ed.close_stdin();
    let exited = ed.wait_exit(Duration::from_secs(10)).await;
    let took = t0.elapsed();
    eprintln!("stdin EOF → exit took {took:?}");
    assert!(exited.is_some(), "the server exits when its input ends");
    assert!(
        took < Duration::from_secs(5),
        "the server stopped promptly: {took:?}"
    );
    assert_eq!(survivors(4), Vec::<String>::new(), "when the server exited");
    assert_eq!(
        model.requests().len(),
        1,
        "the agent did not go on without its editor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_survives_the_server_being_killed() {
    let _cleanup = Cleanup(5);
    let (mut ed, _model, _ws, _data) = started(5, true).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let _pending = tokio::spawn(fut);
    wait_all_running(&ed, 5).await;
    ed.kill9().await;
    // The supervisor learns of it from the kernel (parent-death signal) or
    // its own poll of its parent, then kills everything it leads.
    if let Err(left) = none_survive(5, T).await {
        panic!("survived kill -9 of the server: {left:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_times_out_takes_its_daemons_with_it() {
    let _cleanup = Cleanup(6);
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let mut script: Vec<String> = tricks(6).into_iter().map(|(_, t)| t).collect();
    script.push(format!("sleep {}.69", std::process::id()));
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "slow",
            "run_command",
            json!({"command": script.join("\n"), "timeout_secs": 2}),
        )]),
        Reply::Text("finished".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path())).await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &r).await;
    let out = &support::model::tool_results(&model.requests()[1].body)[0].1;
    assert!(out.contains("timed out"), "{out}");
    assert_eq!(survivors(6), Vec::<String>::new(), "after the timeout");
    ed.shutdown().await;
}

// ---------------------------------------------------------------------------
// Approval dialogs that stop mattering are withdrawn

/// A server whose model asks to run `rm -rf d1`, `d2`, `d3` at once (each
/// needs an approval; the editor never answers unless the test does).
async fn three_questions(
    timeout_secs: u64,
) -> (Editor, ModelServer, tempfile::TempDir, tempfile::TempDir) {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let calls = (1..=3)
        .map(|i| {
            call(
                &format!("rm{i}"),
                "run_command",
                json!({"command": format!("rm -rf d{i}")}),
            )
        })
        .collect();
    let model = ModelServer::start(vec![Reply::ToolCalls(calls), Reply::Text("done".into())]).await;
    let (ed, _) = Editor::start(support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({"approval": {"timeoutSecs": timeout_secs}}),
    ))
    .await;
    (ed, model, ws, data)
}

fn cancels(ed: &Editor) -> Vec<support::editor::Notification> {
    ed.notifications()
        .into_iter()
        .filter(|n| n.method == "$/cancelRequest")
        .collect()
}

fn expired_messages(ed: &Editor) -> Vec<String> {
    ed.notifications()
        .iter()
        .filter(|n| n.method == "window/showMessage")
        .filter_map(|n| n.params["message"].as_str().map(str::to_string))
        .filter(|m| m.contains("expired"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_dialog_is_withdrawn_before_the_next_one_opens() {
    let (ed, _model, _ws, _data) = three_questions(1).await;
    let r = ed
        .request("tether/prompt", json!({"text": "clean up"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &r).await;
    let dialogs: Vec<_> = ed
        .server_requests()
        .into_iter()
        .filter(|q| q.method == "window/showMessageRequest")
        .collect();
    assert_eq!(dialogs.len(), 3, "{}", ed.dump());
    let cancels = cancels(&ed);
    assert_eq!(
        cancels.len(),
        3,
        "each expired dialog is cancelled: {}",
        ed.dump()
    );
    for (k, d) in dialogs.iter().enumerate() {
        assert_eq!(
            cancels[k].params["id"], d.id,
            "the cancel names the dialog's own request id"
        );
        assert!(cancels[k].at >= d.at);
        if let Some(next) = dialogs.get(k + 1) {
            assert!(
                cancels[k].at <= next.at,
                "dialog {k} was withdrawn before dialog {} opened: never two at once",
                k + 1
            );
        }
    }
    let told = expired_messages(&ed);
    assert_eq!(told.len(), 3, "the person is told each time: {told:?}");
    assert!(
        told[0].contains("rm -rf d") && told[0].contains("within 1 s"),
        "{told:?}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_turn_withdraws_its_dialog_and_an_answer_elsewhere_closes_it() {
    let (ed, _model, _ws, _data) = three_questions(60).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "clean up"}));
    let pending = tokio::spawn(fut);
    // The first dialog is answered another way: by command, as a chat file
    // or a keybinding would. Its dialog is withdrawn, without a message.
    let first = ed.next_server_request("window/showMessageRequest", T).await;
    let approval_id = first.params["actions"][0]["approvalId"].clone();
    let done = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.deny", "arguments": [approval_id]}),
        )
        .await
        .expect("deny");
    assert_eq!(done["resolved"], true, "{done}");
    let c = ed
        .wait_notification(|n| n.method == "$/cancelRequest", T)
        .await;
    assert_eq!(c.params["id"], first.id);
    // The second dialog: the turn is cancelled while it is open.
    let second = ed.next_server_request("window/showMessageRequest", T).await;
    assert_ne!(second.id, first.id);
    let sid = ed.wait_update(|u| u["kind"] == "approval", T).await["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r = pending.await.expect("join").expect("prompt");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "cancelled", "{r}");
    let all = ed
        .wait_notifications(|n| n.method == "$/cancelRequest", 2, T)
        .await;
    assert_eq!(all[1].params["id"], second.id);
    let told = expired_messages(&ed);
    assert_eq!(
        told.len(),
        1,
        "only the cancelled one is announced: {told:?}"
    );
    assert!(told[0].contains("cancelled"), "{told:?}");
    ed.shutdown().await;
}
