//! The editor-facing server: the chat file (the Helix way in), approvals in
//! the file for clients without dialogs, progress, code actions, commands
//! that return at once, and slash commands.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{choose_action, ClientProfile, Editor, EditorConfig};
use support::model::{call, messages, ModelServer, Reply};

const T: Duration = Duration::from_secs(20);

fn cfg(
    profile: ClientProfile,
    root: &Path,
    model: &ModelServer,
    data: &Path,
    extra: Value,
) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        profile,
        root,
        model,
        data,
        extra,
    )
}

fn clean_build_script() -> Vec<Reply> {
    vec![
        Reply::TextThenTools(
            "I will clean the build.".into(),
            vec![call(
                "rm",
                "run_command",
                json!({"command": "rm -rf build"}),
            )],
        ),
        Reply::Text("The build directory is handled.".into()),
    ]
}

async fn open_chat(ed: &Editor, ws: &Path, body: &str) -> String {
    let path = support::write_file(ws, "notes.tether.md", body);
    let uri = support::uri(&path);
    ed.open(&uri, "markdown", body).await;
    uri
}

/// Runs a code action whose title starts with `prefix` at `line`.
async fn run_action(ed: &Editor, uri: &str, line: u32, prefix: &str) -> Value {
    let actions = ed
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri},
                "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}},
                "context": {"diagnostics": []}
            }),
        )
        .await
        .expect("code actions");
    let action = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["title"].as_str().is_some_and(|t| t.starts_with(prefix)))
        })
        .unwrap_or_else(|| panic!("no action {prefix:?} in {actions}"))
        .clone();
    let cmd = &action["command"];
    ed.request(
        "workspace/executeCommand",
        json!({"command": cmd["command"], "arguments": cmd["arguments"]}),
    )
    .await
    .expect("execute")
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).expect("line") as u32
}

/// Helix 25.07 (no dialogs): the approval is written into the chat file and
/// answered with a code action there.
async fn helix_chat_turn(answer: Option<&str>, timeout_secs: u64) -> (tempfile::TempDir, String) {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.o", "x");
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(clean_build_script()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({"approval": {"timeoutSecs": timeout_secs}}),
    ))
    .await;
    let uri = open_chat(&ed, ws.path(), "## You\n\nclean the build please\n").await;
    let t0 = Instant::now();
    let out = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.chat", "arguments": [uri]}),
        )
        .await
        .expect("tether.chat");
    assert!(t0.elapsed() < Duration::from_millis(500), "returns at once");
    assert!(out["sessionId"].is_string());
    let text = ed
        .wait_document(&uri, |t| t.contains("Approval needed"), T)
        .await;
    assert!(
        text.starts_with("<!-- tether-session: "),
        "the file records its session: {text}"
    );
    assert!(
        text.contains("I will clean the build."),
        "the reply streams in: {text}"
    );
    assert!(text.contains("`rm -rf build`"), "{text}");
    assert!(
        ws.path().join("build/out.o").exists(),
        "not run before the answer"
    );
    if let Some(a) = answer {
        let line = line_of(&text, "Approval needed");
        let r = run_action(&ed, &uri, line, a).await;
        assert_eq!(r["resolved"], true);
    }
    let done = ed
        .wait_document(
            &uri,
            |t| t.trim_end().ends_with("## You") && t.contains("handled"),
            T,
        )
        .await;
    assert!(ed
        .server_requests()
        .iter()
        .all(|r| r.method != "window/showMessageRequest"));
    ed.shutdown().await;
    (ws, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_25_07_chat_file_approve_runs_the_command() {
    let (ws, text) = helix_chat_turn(Some("Tether: Approve"), 60).await;
    assert!(
        !ws.path().join("build").exists(),
        "approved in the file: ran"
    );
    assert!(text.contains("✓ allowed: `rm -rf build`"), "{text}");
    assert!(text.contains("✓ Run `rm -rf build`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_25_07_chat_file_deny_leaves_it_unrun() {
    let (ws, text) = helix_chat_turn(Some("Tether: Deny"), 60).await;
    assert!(ws.path().join("build/out.o").exists());
    assert!(text.contains("✗ denied: `rm -rf build`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_25_07_chat_file_timeout_denies() {
    let (ws, text) = helix_chat_turn(None, 1).await;
    assert!(ws.path().join("build/out.o").exists());
    assert!(text.contains("timed out"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_master_chat_file_uses_the_dialog_and_the_session_continues() {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.o", "x");
    let data = tempfile::tempdir().expect("data");
    let mut script = clean_build_script();
    script.push(Reply::Text("Second answer.".into()));
    let model = ModelServer::start(script).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixMaster,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let uri = open_chat(&ed, ws.path(), "clean the build please\n").await;
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.chat", "arguments": [uri]}),
    )
    .await
    .expect("tether.chat");
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Allow once").expect("a")),
    )
    .await;
    let text = ed
        .wait_document(
            &uri,
            |t| t.trim_end().ends_with("## You") && t.contains("handled"),
            T,
        )
        .await;
    assert!(!ws.path().join("build").exists());
    // The person writes under "## You" and sends again: the same session.
    let next = format!("{text}what did you do?\n");
    ed.change(&uri, &next).await;
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.chat", "arguments": [uri]}),
    )
    .await
    .expect("tether.chat 2");
    let text = ed
        .wait_document(&uri, |t| t.contains("Second answer."), T)
        .await;
    assert_eq!(text.matches("<!-- tether-session:").count(), 1);
    let reqs = model.requests();
    let sent = messages(&reqs.last().expect("request").body);
    assert!(
        sent.iter().any(|(_, t)| t == "clean the build please"),
        "history went along: {sent:?}"
    );
    assert!(sent.iter().any(|(_, t)| t == "what did you do?"));
    // Streamed text was coalesced: far fewer edits than chunks.
    let edits = ed
        .server_requests()
        .iter()
        .filter(|r| r.method == "workspace/applyEdit")
        .count();
    assert!(edits < 20, "{edits} edits");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_returns_at_once_while_a_turn_runs() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::TextThenHang("busy".into())]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let chat = open_chat(&ed, ws.path(), "## You\n\nhello\n").await;
    let first = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.ask", "arguments": ["start something long"]}),
        )
        .await
        .expect("ask");
    let sid = first["sessionId"].as_str().expect("sid").to_string();
    ed.wait_update(|u| u["kind"] == "text", T).await;
    let commands = [
        ("tether.ask", json!(["another one"])),
        ("tether.newSession", json!([])),
        ("tether.chat", json!([chat])),
        ("tether.approve", json!(["ap-none"])),
        ("tether.deny", json!(["ap-none"])),
        ("tether.cancel", json!([sid])),
    ];
    for (command, args) in commands {
        let t0 = Instant::now();
        let _ = ed
            .request(
                "workspace/executeCommand",
                json!({"command": command, "arguments": args}),
            )
            .await;
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(50), "{command} took {took:?}");
    }
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_each_phase_of_a_turn() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "c",
            "run_command",
            json!({"command": "echo hi"}),
        )]),
        Reply::Text("done".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::Neovim,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    let end = ed
        .wait_notification(
            |n| n.method == "$/progress" && n.params["value"]["kind"] == "end",
            T,
        )
        .await;
    let token = end.params["token"].clone();
    assert!(ed
        .server_requests()
        .iter()
        .any(|r| r.method == "window/workDoneProgress/create" && r.params["token"] == token));
    let msgs: Vec<String> = ed
        .notifications()
        .iter()
        .filter(|n| n.method == "$/progress" && n.params["token"] == token)
        .map(|n| {
            format!(
                "{}:{}",
                n.params["value"]["kind"].as_str().unwrap_or(""),
                n.params["value"]["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        msgs.first().map(String::as_str),
        Some("begin:thinking"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("report:running Run `echo hi`")),
        "{msgs:?}"
    );
    assert_eq!(
        msgs.last().map(String::as_str),
        Some("end:done"),
        "{msgs:?}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_progress_for_a_client_that_does_not_declare_it() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::Text("done".into())]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::Bare,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    assert!(ed
        .server_requests()
        .iter()
        .all(|r| r.method != "window/workDoneProgress/create"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_actions_on_a_selection_send_the_code_along() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let src = "fn main() {\n    // TODO: print the sum of 2 and 3\n    let x = 1;\n}\n";
    let path = support::write_file(ws.path(), "src/main.rs", src);
    let uri = support::uri(&path);
    let model = ModelServer::start(vec![
        Reply::Text("It adds.".into()),
        Reply::Text("Done.".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    ed.open(&uri, "rust", src).await;
    let actions = ed
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri},
                "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 14}},
                "context": {"diagnostics": [{"range": {"start": {"line": 2, "character": 8}, "end": {"line": 2, "character": 9}}, "message": "unused variable: `x`"}]}
            }),
        )
        .await
        .expect("actions");
    let titles: Vec<&str> = actions
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Tether: explain",
            "Tether: fix",
            "Tether: do what the comment says"
        ]
    );
    let fix = &actions[1]["command"];
    assert!(fix["arguments"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("unused variable"));
    let comment = &actions[2]["command"];
    ed.request(
        "workspace/executeCommand",
        json!({"command": comment["command"], "arguments": comment["arguments"]}),
    )
    .await
    .expect("run");
    ed.wait_update(|u| u["kind"] == "turnEnd", T).await;
    let sent = messages(&model.requests()[0].body);
    let user = &sent.iter().find(|(r, _)| r == "user").expect("user").1;
    assert!(
        user.contains("Do what this comment says: TODO: print the sum of 2 and 3"),
        "{user}"
    );
    assert!(
        user.contains("let x = 1;") && user.contains("lines 2-3"),
        "the selection went along: {user}"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_builtin_templates_and_alias_loops() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::Text("reviewed".into())]).await;
    let commands = json!({"commands": {
        "review": {"prompt": "Review {args} for bugs.", "description": "review a file"},
        "r": {"alias": "/review"},
        "loop1": {"alias": "/loop2"},
        "loop2": {"alias": "/loop1 {args}"}
    }});
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        commands,
    ))
    .await;
    let help = ed
        .request("tether/prompt", json!({"text": "/help"}))
        .await
        .expect("help");
    let text = help["text"].as_str().unwrap_or("");
    assert!(
        text.contains("/new") && text.contains("/review") && text.contains("review a file"),
        "{text}"
    );
    assert!(model.requests().is_empty(), "no model call for /help");
    let r = ed
        .request("tether/prompt", json!({"text": "/r src/lib.rs"}))
        .await
        .expect("r");
    assert_eq!(r["stopReason"], "end_turn");
    let sent = messages(&model.requests()[0].body);
    assert!(
        sent.iter().any(|(_, t)| t == "Review src/lib.rs for bugs."),
        "{sent:?}"
    );
    let err = ed
        .request("tether/prompt", json!({"text": "/loop1 x"}))
        .await
        .expect_err("loop");
    assert!(err.message.contains("alias loop"), "{err}");
    let new = ed
        .request(
            "tether/prompt",
            json!({"text": "/new", "sessionId": r["sessionId"]}),
        )
        .await
        .expect("new");
    assert_ne!(new["sessionId"], r["sessionId"]);
    ed.shutdown().await;
}

/// Waits until `path` on disk satisfies `pred`.
async fn wait_file(path: &Path, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if pred(&t) {
            return t;
        }
        assert!(
            start.elapsed() < T,
            "waited for {}; it holds:\n{t}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain client (Helix 25.07: no showDocument, drops `tether/update`) sees
/// a `tether.ask` turn: the transcript gets the prompt, the tool call and the
/// reply, and the message line says where it is and what the reply was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_gets_the_ask_transcript_and_messages() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call("l", "list_dir", json!({"path": "."}))]),
        Reply::Text("Here it is.\nMore detail.".into()),
        Reply::Text("Second answer.".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let r = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.ask", "arguments": ["what is here?"]}),
        )
        .await
        .expect("ask");
    let sid = r["sessionId"].as_str().expect("sid").to_string();
    let path = ws.path().join(".tether/ask.tether.md");
    let message = |needle: &'static str| {
        move |n: &support::editor::Notification| {
            n.method == "window/showMessage"
                && n.params["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
        }
    };
    ed.wait_notification(
        message("Tether: reply in .tether/ask.tether.md (:open .tether/ask.tether.md)"),
        T,
    )
    .await;
    ed.wait_notification(
        message("Tether: Here it is.… (reply in .tether/ask.tether.md)"),
        T,
    )
    .await;
    let t = wait_file(&path, |t| t.ends_with("## You\n\n")).await;
    assert!(
        t.starts_with(&format!(
            "<!-- tether-session: {sid} -->\n## You\n\nwhat is here?\n\n## Tether\n\n> ✓ "
        )),
        "{t}"
    );
    // The reply after the quoted tool line is a paragraph of its own.
    assert!(
        t.ends_with("\n\nHere it is.\nMore detail.\n\n## You\n\n"),
        "{t}"
    );
    assert!(
        !t.contains("\n\n\n"),
        "one blank line between blocks: {t:?}"
    );
    // The next ask continues the session under the trailing `## You`.
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.ask", "arguments": ["and then?"]}),
    )
    .await
    .expect("ask");
    let t = wait_file(&path, |t| {
        t.contains("Second answer.") && t.ends_with("## You\n\n")
    })
    .await;
    assert!(
        t.contains(
            "More detail.\n\n## You\n\nand then?\n\n## Tether\n\nSecond answer.\n\n## You\n\n"
        ),
        "{t}"
    );
    assert_eq!(t.matches("tether-session").count(), 1, "{t}");
    assert!(!t.contains("\n\n\n"), "{t:?}");
    ed.shutdown().await;
}

/// Helix master opens the transcript (`window/showDocument`) before the
/// reply is written, so the reply goes into its buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_show_document_is_shown_the_transcript_first() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::Text("Shown in the buffer.".into())]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixMaster,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    ed.set_deferred("window/showDocument", true);
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.ask", "arguments": ["show me"]}),
    )
    .await
    .expect("ask");
    let show = ed.next_server_request("window/showDocument", T).await;
    let path = ws.path().join(".tether/ask.tether.md");
    let uri = support::uri(&path);
    assert_eq!(show.params["uri"], json!(uri));
    assert_eq!(show.params["takeFocus"], json!(true));
    // The editor opens the file (what it reads from disk) and then answers.
    let on_disk = std::fs::read_to_string(&path).expect("the prompt is on disk first");
    assert!(on_disk.ends_with("## You\n\nshow me\n"), "{on_disk}");
    assert!(
        !on_disk.contains("## Tether"),
        "nothing before it is open: {on_disk}"
    );
    ed.open(&uri, "markdown", &on_disk).await;
    ed.reply(show.id.clone(), Ok(json!({"success": true})))
        .await;
    let doc = ed
        .wait_document(&uri, |t| t.ends_with("## You\n\n"), T)
        .await;
    assert!(
        doc.contains("## Tether\n\nShown in the buffer.\n\n## You\n\n"),
        "{doc}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("disk"),
        on_disk,
        "the open buffer got the reply; the disk is left to the editor's save"
    );
    assert!(
        !ed.notifications()
            .iter()
            .any(|n| n.method == "window/showMessage"
                && n.params["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(":open"))),
        "no need to say where: it is open"
    );
    ed.shutdown().await;
}

/// A client that declares it shows `tether/update` (the plugins) gets no
/// transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_takes_updates_gets_no_transcript() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::Text("Only as updates.".into())]).await;
    let config = cfg(
        ClientProfile::Neovim,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    );
    let mut ed = Editor::spawn(&config);
    let mut params = support::editor::initialize_params(&config);
    params["capabilities"]["experimental"] = json!({"tether": {"updates": true}});
    ed.initialize(params).await.expect("initialize");
    ed.notify("initialized", json!({})).await;
    let r = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.ask", "arguments": ["hi"]}),
        )
        .await
        .expect("ask");
    support::turn_ended(&ed, &r).await;
    assert!(!ws.path().join(".tether/ask.tether.md").exists());
    assert!(!ed
        .server_requests()
        .iter()
        .any(|r| r.method == "window/showDocument"));
    ed.shutdown().await;
}

/// Commands that fail say why on the message line, not only in a log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commands_reach_the_person() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    for (command, args, says) in [
        (
            "tether.ask",
            json!([]),
            "needs the prompt as one quoted string",
        ),
        (
            "tether.ask",
            json!([""]),
            "needs the prompt as one quoted string",
        ),
        ("tether.approve", json!([]), "no approval is pending"),
        ("tether.deny", json!(["ap-gone"]), "ap-gone is not pending"),
    ] {
        let _ = ed
            .request(
                "workspace/executeCommand",
                json!({"command": command, "arguments": args}),
            )
            .await;
        ed.wait_notification(
            |n| {
                n.method == "window/showMessage"
                    && n.params["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(says))
            },
            T,
        )
        .await;
    }
    ed.shutdown().await;
}

/// A chat turn cancelled before any reply leaves `(cancelled)`, never an
/// empty `## Tether`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_chat_turn_says_so() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::TextThenHang(String::new())]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let uri = open_chat(&ed, ws.path(), "## You\n\nwait for it\n").await;
    let r = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.chat", "arguments": [uri]}),
        )
        .await
        .expect("chat");
    model.wait_requests(1, T).await;
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.cancel", "arguments": [r["sessionId"]]}),
    )
    .await
    .expect("cancel");
    let doc = ed
        .wait_document(
            &uri,
            |t| t.ends_with("## You\n\n") && t.contains("## Tether"),
            T,
        )
        .await;
    assert!(
        doc.ends_with("## You\n\nwait for it\n\n## Tether\n\n(cancelled)\n\n## You\n\n"),
        "{doc:?}"
    );
    ed.shutdown().await;
}

/// Helix 25.07 with progress messages in its status line: the denial advice
/// is sent again after the turn's progress `end`, so "done" cannot hide it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_advice_comes_after_the_progress_end() {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.o", "x");
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(clean_build_script()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({"approval": {"mode": "ask"}}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "clean"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &r).await;
    let advice = "Tether denied `rm -rf build`: set approval mode \"allow\" in languages.toml";
    let shown = ed
        .wait_notifications(
            |n| n.method == "window/showMessage" && n.params["message"] == advice,
            2,
            T,
        )
        .await;
    let end = ed
        .wait_notification(
            |n| n.method == "$/progress" && n.params["value"]["kind"] == "end",
            T,
        )
        .await;
    assert!(shown[0].at <= end.at, "told at once");
    assert!(shown[1].at >= end.at, "and again after the progress end");
    assert!(ws.path().join("build/out.o").exists());
    ed.shutdown().await;
}

/// Two `tether.ask` turns of different sessions at once: the second waits
/// for the first in the transcript; their lines never interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_turns_of_two_sessions_do_not_interleave() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::SlowText {
            text: "first reply, slowly".into(),
            chunk_delay_ms: 30,
        },
        Reply::Text("second reply".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let ask = |text: &'static str| json!({"command": "tether.ask", "arguments": [text]});
    let first = ed
        .request("workspace/executeCommand", ask("one"))
        .await
        .expect("ask");
    model.wait_requests(1, T).await;
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.newSession", "arguments": []}),
    )
    .await
    .expect("new session");
    let second = ed
        .request("workspace/executeCommand", ask("two"))
        .await
        .expect("ask");
    assert_ne!(first["sessionId"], second["sessionId"]);
    let path = ws.path().join(".tether/ask.tether.md");
    let t = wait_file(&path, |t| {
        t.contains("second reply") && t.matches("## You").count() == 4
    })
    .await;
    let expected = format!(
        "<!-- tether-session: {} -->\n## You\n\none\n\n## Tether\n\nfirst reply, slowly\n\n## You\n\n\
         <!-- tether-session: {} -->\n## You\n\ntwo\n\n## Tether\n\nsecond reply\n\n## You\n\n",
        first["sessionId"].as_str().unwrap_or(""),
        second["sessionId"].as_str().unwrap_or("")
    );
    assert_eq!(t, expected);
    ed.shutdown().await;
}

/// Every way to begin a session goes through the engine, so the stored
/// sessions look alike: `tether.newSession`, `/new`, a prompt without a
/// session and a new chat file all record the workspace and the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_to_begin_a_session_stores_it_the_same_way() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::Text("hi".into()), Reply::Text("ok".into())]).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::Neovim,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let sid = |v: &Value| v["sessionId"].as_str().expect("sessionId").to_string();
    let by_command = ed
        .request(
            "workspace/executeCommand",
            json!({"command": "tether.newSession", "arguments": []}),
        )
        .await
        .expect("newSession");
    let by_slash = ed
        .request("tether/prompt", json!({"text": "/new"}))
        .await
        .expect("/new");
    let by_prompt = ed
        .request("tether/prompt", json!({"text": "hello"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &by_prompt).await;
    // The next prompt continues the session tether.newSession began.
    let continued = ed
        .request(
            "tether/prompt",
            json!({"sessionId": sid(&by_command), "text": "and this"}),
        )
        .await
        .expect("continue");
    assert_eq!(sid(&continued), sid(&by_command));
    support::turn_ended(&ed, &continued).await;
    ed.shutdown().await;

    let store = tether::store::Store::open(data.path());
    let mut seen = Vec::new();
    for id in [sid(&by_command), sid(&by_slash), sid(&by_prompt)] {
        let s = store
            .session(id.clone())
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("session {id} stored"));
        seen.push((s.workspace, s.model));
    }
    assert!(!seen[0].0.is_empty() && !seen[0].1.is_empty(), "{seen:?}");
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}
