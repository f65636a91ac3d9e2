//! What the model writes cannot drive the person's terminal. A reply made of
//! every control character (and real escape sequences: OSC 52 clipboard,
//! clear screen, window title, OSC 8 link) goes through `tether exec` and
//! then `tether sessions show|list|search|export` and `tether rules list`;
//! none of them prints a control byte but `\n` and `\t`, and each shows what
//! was there (`\u{1b}`), so the person can see it. JSON keeps the raw text,
//! escaped by JSON.
//!
//! And a closed stdout (`tether rules list | head -1`) is success for every
//! listing and for `exec`: exit 0, no panic.
//!
//! Terminal editors show what the server writes too: the chat file, the
//! approval dialog's message and `$/progress` carry no control character but
//! `\n` and `\t` either.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, ShowMessagePolicy};
use support::model::{call, ModelServer, Reply};
use tether::store::{Store, Write};

/// Every character a terminal treats as a control: C0, DEL and C1.
fn every_control() -> String {
    (0u32..0x20)
        .chain(0x7f..=0x9f)
        .filter_map(char::from_u32)
        .collect()
}

/// The attack: escape sequences a terminal acts on, then every control.
fn hostile_reply() -> String {
    format!(
        "Reply start.\r\n\u{1b}]52;c;c2VjcmV0\u{7}\u{1b}[2J\u{1b}]0;pwned\u{7}\
         \u{1b}]8;;https://attacker.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\\n\
         {}\u{9b}31m\nReply end.",
        every_control()
    )
}

/// Fails with the offending characters if `bytes` holds a control byte other
/// than `\n` and `\t` (C0, DEL, or a C1 control encoded in UTF-8).
fn assert_no_control_bytes(what: &str, bytes: &[u8]) {
    let text =
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {bytes:?}"));
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed control characters {bad:?}:\n{text}"
    );
    assert!(
        !bytes
            .iter()
            .any(|b| *b < 0x20 && *b != b'\n' && *b != b'\t' || *b == 0x7f),
        "{what}: {bytes:?}"
    );
}

struct Env {
    _tmp: tempfile::TempDir,
    ws: std::path::PathBuf,
    data: std::path::PathBuf,
    home: std::path::PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ws, data, home) = (
        tmp.path().join("ws"),
        tmp.path().join("data"),
        tmp.path().join("home"),
    );
    for d in [&ws, &home] {
        std::fs::create_dir_all(d).expect("dir");
    }
    Env {
        _tmp: tmp,
        ws,
        data,
        home,
    }
}

/// `tether ARGS…` in a clean environment (no key, no config of the person's).
fn tether(e: &Env, model: Option<&ModelServer>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.args(args)
        .current_dir(&e.ws)
        .env("HOME", &e.home)
        .env("TETHER_DATA_DIR", &e.data)
        .stdin(Stdio::null());
    if let Some(m) = model {
        cmd.env("TETHER_MODEL", "scripted")
            .env("TETHER_BASE_URL", m.base_url());
    }
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run tether")
}

/// Runs `tether exec` against a model that first calls a tool whose path is
/// hostile (so events on stderr carry it too), then gives the hostile reply.
/// Returns the output and the session id.
async fn exec_hostile(e: &Env) -> (Output, String) {
    let path = "notes\u{1b}]0;title\u{7}\u{9b}2J.txt";
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call("c1", "read_file", json!({ "path": path }))]),
        Reply::text(hostile_reply()),
    ])
    .await;
    let cmd = tether(e, Some(&model), &["exec", "say something"]);
    let out = tokio::task::spawn_blocking(move || run(cmd))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exec failed: {stderr}");
    let session = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tether: session "))
        .unwrap_or_else(|| panic!("no session id on stderr: {stderr}"))
        .trim()
        .to_string();
    (out, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_shows_a_hostile_reply_without_a_control_byte() {
    let e = env();
    let (out, _) = exec_hostile(&e).await;
    assert_no_control_bytes("exec stdout", &out.stdout);
    assert_no_control_bytes("exec stderr", &out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Shown, not dropped: the person sees the clipboard write was attempted.
    assert!(
        stdout.contains("\\u{1b}]52;c;c2VjcmV0\\u{7}\\u{1b}[2J"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\\u{9b}31m") && stdout.contains("\\u{7f}"),
        "{stdout}"
    );
    // Lines stay lines; CRLF is a newline, the reply's tab is kept.
    assert!(stdout.starts_with("Reply start.\n"), "{stdout}");
    assert!(stdout.contains('\t') && stdout.trim_end().ends_with("Reply end."));
    // The tool's hostile path is on stderr, escaped and on one line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("Read notes\\u{1b}]0;title\\u{7}\\u{9b}2J.txt")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_replies_are_shown_escaped_and_exported_raw() {
    let e = env();
    let (_, session) = exec_hostile(&e).await;

    let show = run(tether(&e, None, &["sessions", "show", &session]));
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert_no_control_bytes("sessions show", &show.stdout);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("\\u{1b}]52;c;c2VjcmV0\\u{7}"), "{text}");
    assert!(text.contains("Reply end."), "{text}");

    let list = run(tether(&e, None, &["sessions", "list"]));
    assert!(list.status.success());
    assert_no_control_bytes("sessions list", &list.stdout);

    let search = run(tether(&e, None, &["sessions", "search", "Reply"]));
    assert!(
        search.status.success(),
        "{}",
        String::from_utf8_lossy(&search.stderr)
    );
    assert_no_control_bytes("sessions search", &search.stdout);
    let rows = String::from_utf8_lossy(&search.stdout);
    assert!(rows.contains(&session), "the session is found: {rows}");
    assert_eq!(rows.lines().count(), 1, "one row per session: {rows}");

    // JSON keeps the exact reply: escaped by JSON, not altered.
    let export = run(tether(&e, None, &["sessions", "export", &session]));
    assert!(export.status.success());
    let json = String::from_utf8_lossy(&export.stdout);
    assert!(
        json.chars().all(|c| !c.is_control() || c == '\n'),
        "export printed raw controls: {json:?}"
    );
    let v: Value = serde_json::from_str(&json).expect("export is JSON");
    let replies: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        replies.contains(&hostile_reply().as_str()),
        "the raw reply is in the export: {replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_list_shows_a_hostile_pattern_on_one_escaped_line() {
    let e = env();
    add_rule(
        &e.data,
        "printf '\u{1b}]52;c;eA==\u{7}'\n2\tprefix\tfake row",
    )
    .await;
    let out = run(tether(&e, None, &["rules", "list"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        1,
        "the pattern cannot start a row: {text}"
    );
    assert_eq!(text.matches('\t').count(), 4, "nor a column: {text}");
    assert!(
        text.contains("printf '\\u{1b}]52;c;eA==\\u{7}'\\u{a}2\\u{9}prefix"),
        "{text}"
    );
    assert_no_control_bytes("rules list", &out.stdout);
}

async fn add_rule(data: &Path, pattern: &str) {
    let store = Store::open(data);
    store
        .write(Write::AddRule {
            action: tether::protocol::ActionKind::Command,
            kind: tether::store::RuleKind::Exact,
            pattern: pattern.into(),
        })
        .await
        .expect("add rule");
}

/// Runs a command whose stdout is a pipe nobody reads any more (as in
/// `… | head -1` once head has exited): its first write fails with EPIPE.
fn into_closed_pipe(mut cmd: Command) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success; each is owned once.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn tether");
    // The parent's copy of the write end went into `cmd`; drop it.
    drop(cmd);
    child.wait_with_output().expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_success_for_every_listing_and_exec() {
    let e = env();
    let (_, session) = exec_hostile(&e).await;
    add_rule(&e.data, "cargo test").await;
    let commands: Vec<Vec<&str>> = vec![
        vec!["sessions", "list"],
        vec!["sessions", "show", &session],
        vec!["sessions", "search", "Reply"],
        vec!["sessions", "export", &session],
        vec!["rules", "list"],
    ];
    for args in commands {
        // Each prints something when stdout is open.
        let open = run(tether(&e, None, &args));
        assert!(open.status.success() && !open.stdout.is_empty(), "{args:?}");
        let out = into_closed_pipe(tether(&e, None, &args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }

    // exec: the reply cannot be written; the turn still ends well.
    let model = ModelServer::start(vec![Reply::text("a reply nobody reads")]).await;
    let cmd = tether(&e, Some(&model), &["exec", "hello"]);
    let out = tokio::task::spawn_blocking(move || into_closed_pipe(cmd))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "exec: {stderr}");
    assert!(!stderr.contains("panicked"), "exec: {stderr}");
    assert!(stderr.contains("turn ended: end_turn"), "exec: {stderr}");
}

/// `tether check` and `tether doctor` into a closed stdout: no "Broken pipe"
/// failure; `check` still answers with its exit code (0 safe, 4 forbidden),
/// and `--jsonl` stops reading, successfully.
#[test]
fn check_and_doctor_into_a_closed_stdout_still_answer() {
    let e = env();
    let lines = e.home.join("lines.jsonl");
    std::fs::write(&lines, "{\"command\": \"ls\"}\n".repeat(64)).expect("lines");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["check", "--", "ls"], 0),
        (vec!["check", "--json", "--", "rm", "-rf", "/"], 4),
        (vec!["check", "--jsonl"], 0),
        (vec!["doctor"], 0),
        (vec!["doctor", "--json"], 0),
    ];
    for (args, code) in cases {
        let with_input = |mut cmd: Command| {
            if args.contains(&"--jsonl") {
                cmd.stdin(Stdio::from(std::fs::File::open(&lines).expect("open")));
            }
            cmd
        };
        // Each prints something when stdout is open.
        let open = run(with_input(tether(&e, None, &args)));
        assert!(!open.stdout.is_empty(), "{args:?}");
        let expected = open.status.code();
        if args[0] == "check" {
            assert_eq!(expected, Some(code), "{args:?}");
        }
        let out = into_closed_pipe(with_input(tether(&e, None, &args)));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), expected, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

/// `s` holds no control character but `\n` and `\t`.
fn clean(s: &str) -> bool {
    s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_editor_gets_no_control_characters_in_the_chat_file_dialog_or_progress() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::TextThenTools(
            "Working.\u{1b}]52;c;eA==\u{7}\n".into(),
            vec![
                call(
                    "c1",
                    "run_command",
                    json!({"command": "echo 'x\u{1b}]0;pwned\u{7}'"}),
                ),
                call(
                    "c2",
                    "run_command",
                    json!({"command": "rm -rf 'build\u{1b}[2J'"}),
                ),
            ],
        ),
        Reply::text(hostile_reply()),
    ])
    .await;
    let (ed, _) = Editor::start(support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::Neovim,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    ed.set_show_message_policy(ShowMessagePolicy::choose("Deny"));
    let body = "## You\n\nclean up\n";
    let path = support::write_file(ws.path(), "notes.tether.md", body);
    let uri = support::uri(&path);
    ed.open(&uri, "markdown", body).await;
    ed.request(
        "workspace/executeCommand",
        json!({"command": "tether.chat", "arguments": [uri]}),
    )
    .await
    .expect("tether.chat");
    let text = ed
        .wait_document(
            &uri,
            |t| t.contains("Reply end.") && t.trim_end().ends_with("## You"),
            std::time::Duration::from_secs(20),
        )
        .await;
    assert!(
        clean(&text),
        "the chat file holds control characters: {text:?}"
    );
    for shown in [
        "Working.\\u{1b}]52;c;eA==\\u{7}",
        "\\u{1b}]52;c;c2VjcmV0\\u{7}\\u{1b}[2J",
        "Run `echo 'x\\u{1b}]0;pwned\\u{7}'`",
        "`rm -rf 'build\\u{1b}[2J'`",
    ] {
        assert!(text.contains(shown), "{shown:?} not in {text}");
    }

    let dialogs: Vec<_> = ed
        .server_requests()
        .into_iter()
        .filter(|r| r.method == "window/showMessageRequest")
        .collect();
    assert_eq!(dialogs.len(), 1, "the rm asks: {dialogs:?}");
    let message = dialogs[0].params["message"].as_str().unwrap_or("");
    assert!(
        clean(message) && message.contains("build\\u{1b}[2J"),
        "{message:?}"
    );

    let progress: Vec<String> = ed
        .notifications()
        .iter()
        .filter(|n| n.method == "$/progress")
        .filter_map(|n| n.params["value"]["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        progress
            .iter()
            .any(|m| m.contains("running Run `echo 'x\\u{1b}]0;pwned\\u{7}'`")),
        "{progress:?}"
    );
    assert!(progress.iter().all(|m| clean(m)), "{progress:?}");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_line_quoting_the_model_carries_no_control_characters() {
    // An unreadable stream chunk is logged (a warning on stderr) with a
    // snippet of what the server sent.
    let e = env();
    let chunk = |delta: Value, finish: Value| {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    };
    let model = ModelServer::start(vec![Reply::RawSse {
        events: vec![
            "not json \u{1b}]52;c;eA==\u{7} \u{1b}[2J \u{9b}0m".into(),
            chunk(json!({"content": "fine"}), Value::Null),
            chunk(json!({}), json!("stop")),
        ],
        done: true,
    }])
    .await;
    let cmd = tether(&e, Some(&model), &["exec", "hello"]);
    let out = tokio::task::spawn_blocking(move || run(cmd))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unreadable stream chunk"), "{stderr}");
    assert_no_control_bytes("exec stderr", &out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fine");
}
