//! MCP tool servers written by others, driven by a scripted model through the
//! real binary and the editor emulator: their tools reach the model as
//! `NAME__TOOL` with their schemas; a read-only tool runs without a dialog; a
//! tool its server does not mark read-only asks, and Deny means it is not
//! called; a server killed mid-session is reported and restarted; a cancelled
//! turn cancels the in-flight call; no server outlives the editor; the
//! streamable HTTP transport works; a server the workspace's own config adds
//! runs only after the person approved it.
//!
//! The servers: `@modelcontextprotocol/server-everything` (npm) and
//! `mcp-server-time` (PyPI), installed by `.ci/run`, found through
//! `TETHER_MCP_EVERYTHING` (its `mcp-server-everything` executable) and
//! `TETHER_MCP_TIME`. Locally a missing server skips its tests with a
//! message; with `TETHER_REQUIRE_MCP=1` (CI) it is a failure.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{choose_action, ClientProfile, Editor};
use support::model::{call, tool_names, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(60);

fn server(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        other => {
            let msg = format!(
                "{var} is not set to an installed MCP server ({other:?}); .ci/run installs it"
            );
            if std::env::var_os("TETHER_REQUIRE_MCP").is_some() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

fn everything() -> Option<PathBuf> {
    server("TETHER_MCP_EVERYTHING")
}

async fn start(
    ws: &Path,
    model: &ModelServer,
    data: &Path,
    servers: Value,
    extra: Value,
) -> Editor {
    let mut opts = json!({"mcpServers": servers});
    if let (Some(o), Some(e)) = (opts.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    let cfg = support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws,
        model,
        data,
        opts,
    )
    .env("TETHER_LOG", "info");
    Editor::start(cfg).await.0
}

fn everything_stdio(bin: &Path) -> Value {
    json!({"everything": {"command": bin, "args": ["stdio"]}})
}

/// The MCP server processes below the editor's `tether` (node, under its supervisor).
fn server_pids(ed: &Editor) -> Vec<i32> {
    support::descendants(ed.pid() as i32)
        .into_iter()
        .filter(|&p| {
            support::proc_info(p).is_some_and(|i| {
                !i.cmdline.contains(" supervise ") && i.cmdline.contains("mcp-server")
                    || i.cmdline.contains("server-everything")
            })
        })
        .collect()
}

async fn prompt(ed: &Editor, text: &str) -> Value {
    let r = ed
        .request_with_timeout("tether/prompt", json!({"text": text}), T)
        .await
        .unwrap_or_else(|e| panic!("prompt: {e:?}\n{}", ed.dump()));
    support::turn_ended(ed, &r).await;
    r
}

fn dialogs(ed: &Editor) -> usize {
    ed.server_requests()
        .iter()
        .filter(|r| r.method == "window/showMessageRequest")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_reach_the_model_and_a_read_only_tool_runs_without_asking() {
    let Some(bin) = everything() else { return };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "c1",
            "everything__echo",
            json!({"message": "hello from the model"}),
        )]),
        Reply::text("done"),
    ])
    .await;
    let ed = start(
        ws.path(),
        &model,
        data.path(),
        everything_stdio(&bin),
        json!({}),
    )
    .await;
    let r = prompt(&ed, "echo something").await;
    assert_eq!(r["stopReason"], "end_turn", "{r}");
    let reqs = model.chat_requests();
    let first = &reqs[0].body;
    let names = tool_names(first);
    for n in [
        "everything__echo",
        "everything__get-sum",
        "everything__toggle-simulated-logging",
    ] {
        assert!(names.contains(&n.to_string()), "{n} offered: {names:?}");
    }
    assert!(
        names.contains(&"read_file".to_string()),
        "built-ins stay: {names:?}"
    );
    let echo = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["function"]["name"] == "everything__echo")
        .expect("echo");
    assert_eq!(
        echo["function"]["parameters"]["properties"]["message"]["type"], "string",
        "the server's schema is passed on: {echo}"
    );
    assert!(names.iter().all(|n| n.len() <= 64));
    let results = tool_results(&reqs[1].body);
    assert_eq!(results[0].0, "c1");
    assert!(
        results[0].1.contains("Echo: hello from the model"),
        "the server's answer reaches the model: {results:?}"
    );
    assert_eq!(dialogs(&ed), 0, "echo is read-only: nobody was asked");
    let done = ed
        .updates()
        .into_iter()
        .find(|u| u["kind"] == "toolCall" && u["toolCallId"] == "c1" && u["status"] == "completed")
        .expect("completed update");
    assert!(
        done["title"].as_str().unwrap_or("").contains("everything"),
        "the editor is told which server: {done}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_not_marked_read_only_asks_and_deny_means_it_is_not_called() {
    let Some(bin) = everything() else { return };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let toggle = || {
        Reply::ToolCalls(vec![call(
            "t",
            "everything__toggle-simulated-logging",
            json!({}),
        )])
    };
    let model = ModelServer::start(vec![
        toggle(),
        Reply::text("denied"),
        toggle(),
        Reply::text("allowed"),
    ])
    .await;
    let ed = start(
        ws.path(),
        &model,
        data.path(),
        everything_stdio(&bin),
        json!({}),
    )
    .await;

    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "toggle logging"}));
    let pending = tokio::spawn(fut);
    let dialog = ed.next_server_request("window/showMessageRequest", T).await;
    let msg = dialog.params["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("MCP server `everything` wants to run `toggle-simulated-logging`"),
        "{msg}"
    );
    let deny = choose_action(&dialog.params, "Deny").expect("Deny");
    assert_eq!(deny["kind"], "mcp", "{deny}");
    assert_eq!(deny["action"], "everything/toggle-simulated-logging");
    ed.reply(dialog.id.clone(), Ok(deny)).await;
    let r = pending.await.expect("join").expect("prompt");
    support::turn_ended(&ed, &r).await;
    let denied = tool_results(&model.chat_requests()[1].body);
    assert!(denied[0].1.contains("Denied"), "{denied:?}");

    // The second time it is allowed: the server answers "Started", which it
    // only does when the toggle was off — the denied call never reached it.
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "toggle again"}));
    let pending = tokio::spawn(fut);
    let dialog = ed.next_server_request("window/showMessageRequest", T).await;
    let once = choose_action(&dialog.params, "Allow once").expect("Allow once");
    ed.reply(dialog.id.clone(), Ok(once)).await;
    let r = pending.await.expect("join").expect("prompt");
    support::turn_ended(&ed, &r).await;
    let reqs = model.chat_requests();
    let allowed = tool_results(&reqs[3].body);
    let last = &allowed.last().expect("result").1;
    assert!(
        last.starts_with("Started simulated"),
        "the denied call did not run, the allowed one did: {last}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_session_is_reported_and_restarted() {
    let Some(bin) = everything() else { return };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let echo = |id: &str, m: &str| {
        Reply::ToolCalls(vec![call(id, "everything__echo", json!({"message": m}))])
    };
    let model = ModelServer::start(vec![
        echo("a", "one"),
        Reply::text("ok"),
        echo("b", "two"),
        Reply::text("ok"),
    ])
    .await;
    let ed = start(
        ws.path(),
        &model,
        data.path(),
        everything_stdio(&bin),
        json!({}),
    )
    .await;
    prompt(&ed, "first").await;
    let before = server_pids(&ed);
    assert!(!before.is_empty(), "the server runs below tether");
    for &p in &before {
        // SAFETY: kill(2) on a process of this test's own server.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
    ed.wait_stderr("MCP server `everything` stopped", T).await;
    prompt(&ed, "second").await;
    let reqs = model.chat_requests();
    let out = &tool_results(&reqs[3].body)
        .last()
        .expect("result")
        .1
        .clone();
    assert!(
        out.contains("had stopped") && out.contains("restarted"),
        "the model is told: {out}"
    );
    assert!(
        out.contains("Echo: two"),
        "and the call ran on the new server: {out}"
    );
    let after = server_pids(&ed);
    assert!(
        !after.is_empty() && after.iter().all(|p| !before.contains(p)),
        "{before:?} → {after:?}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_turn_cancels_the_call_in_flight() {
    let Some(bin) = everything() else { return };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "slow",
            "everything__trigger-long-running-operation",
            json!({"duration": 120, "steps": 120}),
        )]),
        Reply::text("unused"),
    ])
    .await;
    let ed = start(
        ws.path(),
        &model,
        data.path(),
        everything_stdio(&bin),
        json!({}),
    )
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "wait"}));
    let pending = tokio::spawn(fut);
    let running = ed
        .wait_update(|u| u["toolCallId"] == "slow" && u["status"] == "running", T)
        .await;
    // Cancel once the request is on its way to the server (a cancel before
    // that needs no notification: nothing was sent).
    ed.wait_stderr("sent request", T).await;
    let started = Instant::now();
    ed.notify("tether/cancel", json!({"sessionId": running["sessionId"]}))
        .await;
    let r = pending.await.expect("join").expect("prompt");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "cancelled", "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "did not wait for the tool"
    );
    ed.wait_stderr("sent notifications/cancelled", T).await;
    let end = ed
        .updates()
        .into_iter()
        .rfind(|u| u["toolCallId"] == "slow")
        .expect("update");
    assert_eq!(end["status"], "cancelled", "{end}");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_survives_the_editor() {
    let Some(bin) = everything() else { return };
    for kill9 in [false, true] {
        let ws = support::workspace();
        let data = tempfile::tempdir().expect("data");
        let model = ModelServer::start(vec![
            Reply::ToolCalls(vec![call("e", "everything__echo", json!({"message": "x"}))]),
            Reply::text("ok"),
        ])
        .await;
        let mut ed = start(
            ws.path(),
            &model,
            data.path(),
            everything_stdio(&bin),
            json!({}),
        )
        .await;
        prompt(&ed, "go").await;
        let all = support::descendants(ed.pid() as i32);
        assert!(!server_pids(&ed).is_empty(), "a server runs");
        if kill9 {
            ed.kill9().await;
        } else {
            ed.shutdown().await;
        }
        let gone = support::wait_until(
            || {
                all.iter()
                    .all(|&p| support::proc_info(p).is_none_or(|i| i.state == 'Z'))
            },
            T,
        )
        .await;
        assert!(gone, "kill -9 = {kill9}: left behind {all:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streamable_http_transport() {
    let Some(bin) = everything() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut http = tokio::process::Command::new(&bin)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything over HTTP");
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(http.stderr.take().expect("stderr")).lines();
        let ready = tokio::time::timeout(T, async {
            while let Ok(Some(l)) = lines.next_line().await {
                if l.contains("listening") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "the HTTP server started");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    }
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call("s", "web__get-sum", json!({"a": 2, "b": 40}))]),
        Reply::text("ok"),
    ])
    .await;
    let servers = json!({"web": {"url": format!("http://127.0.0.1:{port}/mcp")}});
    let ed = start(ws.path(), &model, data.path(), servers, json!({})).await;
    prompt(&ed, "add").await;
    let out = &tool_results(&model.chat_requests()[1].body)[0].1;
    assert!(out.contains("42"), "{out}");
    ed.shutdown().await;
    let _ = http.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_from_pypi_with_a_per_tool_override() {
    let Some(bin) = server("TETHER_MCP_TIME") else {
        return;
    };
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "t",
            "time__get_current_time",
            json!({"timezone": "UTC"}),
        )]),
        Reply::text("ok"),
    ])
    .await;
    let servers = json!({"time": {
        "command": bin,
        "args": ["--local-timezone", "UTC"],
        "tools": {"get_current_time": {"approval": "allow"}}
    }});
    let ed = start(ws.path(), &model, data.path(), servers, json!({})).await;
    prompt(&ed, "what time is it").await;
    let reqs = model.chat_requests();
    let names = tool_names(&reqs[0].body);
    assert!(
        names.contains(&"time__convert_time".to_string()),
        "{names:?}"
    );
    let out = &tool_results(&reqs[1].body)[0].1;
    assert!(out.contains("UTC") && out.contains("datetime"), "{out}");
    assert_eq!(
        dialogs(&ed),
        0,
        "approval = \"allow\" for this tool: no dialog"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_workspace_adds_runs_only_once_approved() {
    let Some(bin) = everything() else { return };
    for answer in ["Deny", "Allow once"] {
        let ws = support::workspace();
        support::write_file(
            ws.path(),
            ".tether/config.toml",
            &format!(
                "[mcp_servers.repo]\ncommand = {:?}\nargs = [\"stdio\"]\n",
                bin.display().to_string()
            ),
        );
        let data = tempfile::tempdir().expect("data");
        let model = ModelServer::start(vec![Reply::text("hi")]).await;
        let ed = start(ws.path(), &model, data.path(), json!({}), json!({})).await;
        assert!(server_pids(&ed).is_empty(), "nothing started before asking");
        let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "hello"}));
        let pending = tokio::spawn(fut);
        let dialog = ed.next_server_request("window/showMessageRequest", T).await;
        let msg = dialog.params["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("start repo from") && msg.contains("stdio"),
            "{msg}"
        );
        let item = choose_action(&dialog.params, answer).expect("item");
        ed.reply(dialog.id.clone(), Ok(item)).await;
        let r = pending.await.expect("join").expect("prompt");
        support::turn_ended(&ed, &r).await;
        let names = tool_names(&model.chat_requests()[0].body);
        let offered = names.iter().any(|n| n.starts_with("repo__"));
        if answer == "Deny" {
            assert!(!offered, "{names:?}");
            assert!(server_pids(&ed).is_empty(), "a denied server never ran");
        } else {
            assert!(offered, "{names:?}");
        }
        ed.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_list_shows_each_server_its_tools_and_its_last_error() {
    let Some(bin) = everything() else { return };
    let home = tempfile::tempdir().expect("home");
    let ws = support::workspace();
    let marker = format!("tether-mcp-list-{}", std::process::id());
    std::fs::create_dir_all(home.path().join("tether")).expect("dir");
    std::fs::write(
        home.path().join("tether/config.toml"),
        format!(
            "[mcp_servers.everything]\ncommand = {:?}\nargs = [\"stdio\", {marker:?}]\nenabled_tools = [\"echo\", \"get-sum\"]\n\n\
             [mcp_servers.broken]\ncommand = \"/nonexistent/mcp-server\"\n",
            bin.display().to_string()
        ),
    )
    .expect("config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["mcp", "list", "--json", "--root"])
        .arg(ws.path())
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("tether mcp list");
    assert_eq!(out.status.code(), Some(1), "a failed server is an exit 1");
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    let by = |n: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .expect("listed")
    };
    let ok = by("everything");
    assert_eq!(ok["status"], "running", "{ok}");
    assert_eq!(
        ok["tools"],
        json!(["everything__echo", "everything__get-sum"])
    );
    let broken = by("broken");
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("/nonexistent/mcp-server"),
        "{broken}"
    );
    assert!(
        support::wait_until(|| support::pids_matching(&marker).is_empty(), T).await,
        "the listed server was stopped"
    );
}

/// `tether exec`: the MCP tools work headless, and the servers end with the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_calls_an_mcp_tool_and_leaves_no_server_behind() {
    let Some(bin) = everything() else { return };
    let home = tempfile::tempdir().expect("home");
    let ws = support::workspace();
    let marker = format!("tether-mcp-exec-{}", std::process::id());
    std::fs::create_dir_all(home.path().join("cfg/tether")).expect("dir");
    std::fs::write(
        home.path().join("cfg/tether/config.toml"),
        format!(
            "[mcp_servers.everything]\ncommand = {:?}\nargs = [\"stdio\", {marker:?}]\n",
            bin.display().to_string()
        ),
    )
    .expect("config");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "s",
            "everything__get-sum",
            json!({"a": 1, "b": 2}),
        )]),
        Reply::text("the sum is 3"),
    ])
    .await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") {
            cmd.env_remove(&*k);
        }
    }
    let out = cmd
        .args(["exec", "add 1 and 2", "--root"])
        .arg(ws.path())
        .env("XDG_CONFIG_HOME", home.path().join("cfg"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("TETHER_MODEL", "scripted")
        .env("TETHER_BASE_URL", model.base_url())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("tether exec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("the sum is 3"), "{stdout}");
    let result = &tool_results(&model.chat_requests()[1].body)[0].1;
    assert!(result.contains('3'), "{result}");
    assert!(
        support::wait_until(|| support::pids_matching(&marker).is_empty(), T).await,
        "no server is left once exec has exited"
    );
}

/// Runs the probe server (tests/mcp/probe_server.py) with `entry` (given the
/// directory outside the workspace) merged into its config; its tools try to write `outside` and `inside` and to reach a
/// listener the test holds. Returns the three results and whether the
/// listener saw a connection.
async fn probe_crossings(entry: impl FnOnce(&Path) -> Value) -> (Vec<String>, bool, bool) {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let away = tempfile::tempdir().expect("a directory outside the workspace");
    let entry = entry(away.path());
    let outside = away.path().join("escaped.txt");
    let inside = ws.path().join("inside.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("port").port();
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "w1",
            "probe__write_file",
            json!({"path": outside}),
        )]),
        Reply::ToolCalls(vec![call("n1", "probe__connect", json!({"port": port}))]),
        Reply::ToolCalls(vec![call(
            "w2",
            "probe__write_file",
            json!({"path": inside}),
        )]),
        Reply::text("done"),
    ])
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/probe_server.py");
    let mut server = json!({
        "command": "python3",
        "args": [script],
        "tools": {"write_file": {"approval": "allow"}, "connect": {"approval": "allow"}}
    });
    if let (Some(s), Some(e)) = (server.as_object_mut(), entry.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    let ed = start(
        ws.path(),
        &model,
        data.path(),
        json!({ "probe": server }),
        json!({}),
    )
    .await;
    prompt(&ed, "try the probe").await;
    let reqs = model.chat_requests();
    let results: Vec<String> = (1..=3)
        .map(|i| {
            tool_results(&reqs[i].body)
                .pop()
                .map(|(_, out)| out)
                .unwrap_or_default()
        })
        .collect();
    let connected = listener.accept().is_ok();
    ed.shutdown().await;
    assert_eq!(inside.exists(), results[2].contains("wrote"), "{results:?}");
    (results, outside.exists(), connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_runs_in_the_command_sandbox_unless_its_entry_says_otherwise() {
    let support = tether::sandbox::Support::detect();
    if !support.usable() {
        eprintln!("SKIP: no sandbox on this kernel ({})", support.describe());
        return;
    }
    // By default: writes only in the workspace, and no network.
    let (results, escaped, connected) = probe_crossings(|_| json!({})).await;
    assert!(results[0].contains("write failed"), "{results:?}");
    assert!(!escaped, "nothing was written outside the workspace");
    assert!(results[1].contains("connect failed"), "{results:?}");
    assert!(!connected, "the listener saw no connection");
    assert!(
        results[2].contains("wrote"),
        "the workspace stays writable: {results:?}"
    );

    // `network = true`: the same sandbox for writes, the network on.
    let (results, escaped, connected) = probe_crossings(|_| json!({"network": true})).await;
    assert!(
        results[0].contains("write failed") && !escaped,
        "{results:?}"
    );
    assert!(results[1].contains("connected") && connected, "{results:?}");

    // `writable = [DIR]`: that directory too, the network still off.
    let (results, escaped, connected) = probe_crossings(|away| json!({"writable": [away]})).await;
    assert!(results[0].contains("wrote") && escaped, "{results:?}");
    assert!(
        results[1].contains("connect failed") && !connected,
        "{results:?}"
    );

    // `sandbox = false`: the person's full rights (so the refusals above
    // were the sandbox's doing).
    let (results, escaped, connected) = probe_crossings(|_| json!({"sandbox": false})).await;
    assert!(results[0].contains("wrote") && escaped, "{results:?}");
    assert!(results[1].contains("connected") && connected, "{results:?}");
}
