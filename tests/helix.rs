//! Tether in a real Helix: `hx` runs in tmux with its own HOME and XDG dirs,
//! the project's `editors/helix/languages.toml` (the tether server pointed at
//! this build and at the scripted model), and the test types into it with
//! `tmux send-keys` and reads the screen with `tmux capture-pane`. Every step
//! waits for what the person would see (or for a file) with a generous
//! deadline; nothing waits a fixed time.
//!
//! Helix comes from `TETHER_HX_2507` (25.07.1) and `TETHER_HX_MASTER` (a
//! master build with approval dialogs); CI gets them with
//! `bash ../shared/editors/helix.sh 25.07.1|master`. `HELIX_RUNTIME` is the
//! `runtime` folder beside each `hx`. Without them the tests print `SKIPPED`
//! and pass, unless `TETHER_REQUIRE_HELIX=1` (CI), where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::model::{call, tool_results, ModelServer, Reply};

/// How long anything may take to appear on screen.
const DEADLINE: Duration = Duration::from_secs(60);

const WIDTH: u16 = 80;
const HEIGHT: u16 = 30;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    /// 25.07.1: no dialogs, no showDocument.
    Release,
    /// master 079a789e: showMessageRequest and showDocument.
    Master,
}

impl Build {
    fn var(self) -> &'static str {
        match self {
            Build::Release => "TETHER_HX_2507",
            Build::Master => "TETHER_HX_MASTER",
        }
    }
}

/// The `hx` of a build; `None` means "skip", which `TETHER_REQUIRE_HELIX=1`
/// turns into a failure so that CI cannot pass without running these tests.
fn hx_or_skip(test: &str, build: Build) -> Option<PathBuf> {
    let required = std::env::var("TETHER_REQUIRE_HELIX").is_ok_and(|v| v == "1");
    let found = std::env::var_os(build.var())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let tmux = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match found {
        Some(p) if tmux => {
            assert!(p.is_file(), "{}={} is not a file", build.var(), p.display());
            Some(p)
        }
        _ => {
            assert!(
                !required,
                "{test}: TETHER_REQUIRE_HELIX=1 but {} is unset or tmux is missing: \
                 set {}=\"$(bash ../shared/editors/helix.sh {})\" and install tmux",
                build.var(),
                build.var(),
                if build == Build::Release {
                    "25.07.1"
                } else {
                    "master"
                }
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n==== SKIPPED {test}: no Helix {build:?} (set {} to an hx build) or no tmux ====\n",
                build.var()
            );
            None
        }
    }
}

/// The project's languages.toml, made to run here: the tether server is this
/// build, talking to `model`, with its data in `data`; the other servers
/// (not installed here) are left out of each language.
fn languages_toml(model: &ModelServer, data: &Path, tweak: impl Fn(&mut toml::Table)) -> String {
    let text = std::fs::read_to_string(repo().join("editors/helix/languages.toml"))
        .expect("editors/helix/languages.toml");
    let mut doc: toml::Table = text.parse().expect("languages.toml parses");
    let servers = doc
        .get_mut("language-server")
        .and_then(|v| v.as_table_mut())
        .expect("[language-server]");
    let tether = servers
        .get_mut("tether")
        .and_then(|v| v.as_table_mut())
        .expect("[language-server.tether]");
    tether.insert("command".into(), bin().into());
    let mut env = toml::Table::new();
    env.insert("TETHER_BASE_URL".into(), model.base_url().into());
    env.insert("TETHER_MODEL".into(), "scripted".into());
    env.insert("XDG_DATA_HOME".into(), data.display().to_string().into());
    env.insert("RUST_LOG".into(), "info".into());
    tether.insert("environment".into(), env.into());
    tweak(tether);
    for lang in doc
        .get_mut("language")
        .and_then(|v| v.as_array_mut())
        .expect("[[language]]")
    {
        let list = lang
            .get_mut("language-servers")
            .and_then(|v| v.as_array_mut())
            .expect("language-servers");
        list.retain(|s| s.get("name").and_then(|n| n.as_str()) == Some("tether"));
    }
    toml::to_string(&doc).expect("toml")
}

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// One Helix in its own tmux server.
struct Helix {
    socket: String,
    home: tempfile::TempDir,
}

impl Helix {
    /// Starts `hx file` in `ws` with the given languages.toml.
    fn start(hx: &Path, ws: &Path, languages: &str, file: &str) -> Helix {
        let home = tempfile::tempdir().expect("home");
        let config = home.path().join(".config");
        std::fs::create_dir_all(config.join("helix")).expect("config dir");
        std::fs::write(config.join("helix/languages.toml"), languages).expect("languages.toml");
        // Progress messages in the status line too: the worst case for a
        // message that must stay readable after the turn's progress ends.
        std::fs::write(
            config.join("helix/config.toml"),
            "[editor.lsp]\ndisplay-progress-messages = true\n",
        )
        .expect("config.toml");
        let socket = format!(
            "tether-hx-{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let runtime = hx.parent().expect("hx dir").join("runtime");
        let h = Helix { socket, home };
        let home_dir = h.home.path();
        let status = Command::new("tmux")
            .args(["-L", &h.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string()])
            .args(["-s", "t", "-c"])
            .arg(ws)
            .arg("env")
            .arg(format!("HOME={}", home_dir.display()))
            .arg(format!("XDG_CONFIG_HOME={}", config.display()))
            .arg(format!(
                "XDG_CACHE_HOME={}",
                home_dir.join(".cache").display()
            ))
            .arg(format!(
                "XDG_DATA_HOME={}",
                home_dir.join(".local/share").display()
            ))
            .arg(format!("HELIX_RUNTIME={}", runtime.display()))
            .arg("TERM=xterm-256color")
            .arg(hx)
            .arg(file)
            .stdin(Stdio::null())
            .status()
            .expect("tmux new-session");
        assert!(status.success(), "tmux new-session failed");
        h
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys by tmux name (`Enter`, `Escape`, `Down`, `i`…).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Text typed as is.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Back to normal mode. The Escape goes alone, only when needed, and the
    /// mode line is awaited: an Escape followed at once by a key reads as Alt
    /// plus that key.
    async fn normal_mode(&self) {
        if !self.screen().contains(" NOR ") {
            self.keys(&["Escape"]);
            self.wait_screen("normal mode", |s| s.contains(" NOR "))
                .await;
        }
    }

    /// A `:` command, run from normal mode.
    async fn command(&self, cmd: &str) {
        self.normal_mode().await;
        self.type_text(&format!(":{cmd}"));
        self.wait_text(cmd).await;
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".cache/helix/helix.log")).unwrap_or_default()
    }

    /// Waits until the screen satisfies `pred`; fails with the screen and
    /// Helix's log otherwise.
    async fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "waited {DEADLINE:?} for {what}; the screen:\n{s}\n---- helix.log (tail):\n{}",
                    tail(&self.log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_text(&self, text: &str) -> String {
        self.wait_screen(&format!("{text:?} on screen"), |s| s.contains(text))
            .await
    }

    /// Waits until Helix knows the tether server's commands: its command
    /// picker lists them (retried: the server may still be starting).
    async fn wait_ready(&self) {
        self.wait_screen("Helix to start", |s| s.contains("NOR"))
            .await;
        let start = Instant::now();
        loop {
            self.command("lsp-workspace-command").await;
            let listed = {
                let until = Instant::now() + Duration::from_secs(5);
                loop {
                    let s = self.screen();
                    if s.contains("tether.newSession") {
                        break true;
                    }
                    if Instant::now() > until {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            self.keys(&["Escape"]);
            self.wait_screen("the picker to close", |s| {
                !s.contains("tether.newSession") && s.contains(" NOR ")
            })
            .await;
            if listed {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the tether server never came up; the screen:\n{}\n---- helix.log:\n{}",
                self.screen(),
                tail(&self.log(), 40)
            );
        }
    }
}

impl Drop for Helix {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits for a condition on files (or anything outside the screen).
async fn wait_until(what: &str, h: &Helix, pred: impl Fn() -> bool) {
    let start = Instant::now();
    while !pred() {
        if start.elapsed() > DEADLINE {
            panic!(
                "waited {DEADLINE:?} for {what}; the screen:\n{}\n---- helix.log (tail):\n{}",
                h.screen(),
                tail(&h.log(), 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A workspace Helix takes as its root, with a file to open and a `build/`
/// for commands to delete.
fn workspace() -> tempfile::TempDir {
    let ws = support::workspace();
    std::fs::create_dir_all(ws.path().join(".git")).expect(".git");
    support::write_file(ws.path(), "build/out.txt", "built\n");
    support::write_file(ws.path(), "notes.md", "# Notes\n");
    ws
}

fn transcript(ws: &Path) -> String {
    std::fs::read_to_string(ws.join(".tether/ask.tether.md")).unwrap_or_default()
}

async fn reply_is_visible(build: Build) {
    let test = format!("helix_{build:?}_ask_reply_is_visible");
    let Some(hx) = hx_or_skip(&test, build) else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::text(
        "Forty-two is the answer.\n\nSecond paragraph.",
    )])
    .await;
    let h = Helix::start(
        &hx,
        ws.path(),
        &languages_toml(&model, data.path(), |_| {}),
        "notes.md",
    );
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask \"what is the answer?\"")
        .await;
    match build {
        Build::Master => {
            // The transcript opens by itself and the reply streams into it.
            let s = h.wait_text("Second paragraph.").await;
            assert!(s.contains("ask.tether.md"), "{s}");
            assert!(
                s.contains("## You") && s.contains("what is the answer?"),
                "{s}"
            );
            assert!(s.contains("Forty-two is the answer."), "{s}");
        }
        Build::Release => {
            // No showDocument: the message line says where, then the reply's
            // first line shows there when the turn ends.
            let s = h
                .wait_text("Tether: Forty-two is the answer.… (reply in .tether/ask.tether.md)")
                .await;
            assert!(!s.contains("Second paragraph."), "{s}");
            h.command("open .tether/ask.tether.md").await;
            h.wait_text("Second paragraph.").await;
        }
    }
    let t = transcript(ws.path());
    assert!(t.contains("what is the answer?"), "{t}");
    assert!(!t.contains("\n\n\n"), "no two blank lines in a row: {t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_release_shows_an_ask_reply() {
    reply_is_visible(Build::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_master_opens_the_transcript_with_the_reply() {
    reply_is_visible(Build::Master).await;
}

/// 25.07.1 has no dialogs: the denial says where the policy was set and
/// what to change; doing exactly that lets the command run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_release_denial_advice_followed_word_for_word_runs_the_command() {
    let Some(hx) = hx_or_skip("helix_release_denial_advice", Build::Release) else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "rm1",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Could not delete it."),
        Reply::ToolCalls(vec![call(
            "rm2",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Deleted."),
    ])
    .await;
    let languages = languages_toml(&model, data.path(), |_| {});
    let h = Helix::start(&hx, ws.path(), &languages, "notes.md");
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask \"delete build\"")
        .await;
    let advice = "Tether denied `rm -rf build`: set approval mode \"allow\" in languages.toml";
    assert!(advice.chars().count() <= WIDTH as usize - 2);
    // Shown whole on an 80-column screen, and still there after the turn.
    h.wait_text(advice).await;
    model.wait_requests(2, DEADLINE).await;
    assert!(ws.path().join("build/out.txt").exists(), "denied: not run");
    let told = tool_results(&model.requests()[1].body);
    assert!(
        told[0].1.contains("languages.toml"),
        "the model is told the same: {told:?}"
    );
    let t = transcript(ws.path());
    assert!(t.contains("denied"), "the transcript records it: {t}");
    drop(h);

    // Follow the advice: in languages.toml's tether config, approval mode = "allow".
    let languages = languages_toml(&model, data.path(), |tether| {
        let approval = tether
            .get_mut("config")
            .and_then(|c| c.get_mut("approval"))
            .and_then(|a| a.as_table_mut())
            .expect("the tether config has approval");
        approval.insert("mode".into(), "allow".into());
    });
    let h = Helix::start(&hx, ws.path(), &languages, "notes.md");
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask \"delete build\"")
        .await;
    wait_until("build/ deleted", &h, || !ws.path().join("build").exists()).await;
    h.wait_text("Tether: Deleted.").await;
}

/// Failures of commands the person ran reach the message line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_release_tells_about_failed_commands() {
    let Some(hx) = hx_or_skip("helix_release_failed_commands", Build::Release) else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![]).await;
    let h = Helix::start(
        &hx,
        ws.path(),
        &languages_toml(&model, data.path(), |_| {}),
        "notes.md",
    );
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask").await;
    h.wait_text("tether.ask needs the prompt as one quoted string")
        .await;
    h.command("lsp-workspace-command tether.approve").await;
    h.wait_text("no approval is pending").await;
}

/// Master's dialog: Deny comes first, so a stray Enter denies; Escape
/// denies; the second item allows once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_master_dialog_deny_is_first_and_allow_runs() {
    let Some(hx) = hx_or_skip("helix_master_dialog", Build::Master) else {
        return;
    };
    let ws = workspace();
    for d in ["a", "b", "c"] {
        support::write_file(ws.path(), &format!("{d}/x.txt"), "x\n");
    }
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "ra",
            "run_command",
            json!({"command": "rm -rf a"}),
        )]),
        Reply::text("Turn A over."),
        Reply::ToolCalls(vec![call(
            "rb",
            "run_command",
            json!({"command": "rm -rf b"}),
        )]),
        Reply::text("Turn B over."),
        Reply::ToolCalls(vec![call(
            "rc",
            "run_command",
            json!({"command": "rm -rf c"}),
        )]),
        Reply::text("Turn C over."),
    ])
    .await;
    let h = Helix::start(
        &hx,
        ws.path(),
        &languages_toml(&model, data.path(), |_| {}),
        "notes.md",
    );
    h.wait_ready().await;

    // A stray Enter, typed while writing in insert mode, as the dialog opens.
    h.command("lsp-workspace-command tether.ask \"remove a\"")
        .await;
    let s = h.wait_text("Allow once").await;
    let deny_row = s.lines().position(|l| l.contains("Deny"));
    let allow_row = s.lines().position(|l| l.contains("Allow once"));
    assert!(deny_row < allow_row, "Deny is the first item:\n{s}");
    h.keys(&["Enter"]);
    h.wait_text("Turn A over.").await;
    assert!(ws.path().join("a/x.txt").exists(), "Enter denied");

    // Escape closes the dialog: a deny.
    h.command("lsp-workspace-command tether.ask \"remove b\"")
        .await;
    h.wait_text("Allow once").await;
    h.keys(&["Escape"]);
    h.wait_text("Turn B over.").await;
    assert!(ws.path().join("b/x.txt").exists(), "Escape denied");

    // The second item allows once.
    h.command("lsp-workspace-command tether.ask \"remove c\"")
        .await;
    h.wait_text("Allow once").await;
    h.keys(&["Down"]);
    h.keys(&["Enter"]);
    wait_until("c/ deleted", &h, || !ws.path().join("c").exists()).await;
    h.wait_text("Turn C over.").await;
    let reqs = model.requests();
    let told: Vec<String> = [1, 3]
        .iter()
        .map(|i| tool_results(&reqs[*i].body)[0].1.clone())
        .collect();
    assert!(told.iter().all(|t| t.contains("denied")), "{told:?}");
}

/// The chat file: the prompt under `## You`, the reply under `## Tether`,
/// separated by one blank line, and a new `## You` to write under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_release_chat_file_flow() {
    let Some(hx) = hx_or_skip("helix_release_chat_file", Build::Release) else {
        return;
    };
    let ws = workspace();
    support::write_file(ws.path(), "talk.tether.md", "## You\n\nhello there\n");
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call("l", "list_dir", json!({"path": "."}))]),
        Reply::text("Hi! I see build/ here."),
    ])
    .await;
    let h = Helix::start(
        &hx,
        ws.path(),
        &languages_toml(&model, data.path(), |_| {}),
        "talk.tether.md",
    );
    h.wait_ready().await;
    // Code actions: `space a`, then the first one (Send to Tether).
    h.normal_mode().await;
    h.keys(&["Space", "a"]);
    h.wait_text("Send to Tether").await;
    h.keys(&["Enter"]);
    h.wait_text("Hi! I see build/ here.").await;
    h.wait_screen("the next ## You", |s| s.matches("## You").count() == 2)
        .await;
    // Tether wrote into the buffer and left it unsaved; `:w` keeps it.
    h.command("w").await;
    let path = ws.path().join("talk.tether.md");
    wait_until("the chat file saved", &h, || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("Hi! I see"))
    })
    .await;
    let t = std::fs::read_to_string(&path).expect("chat file");
    let body = t.split_once("-->\n").map(|x| x.1).unwrap_or("");
    assert!(
        body.starts_with("## You\n\nhello there\n\n## Tether\n\n> ✓ "),
        "one blank line before ## Tether: {t:?}"
    );
    assert!(
        body.ends_with("\n\nHi! I see build/ here.\n\n## You\n\n"),
        "the reply is a paragraph of its own after the quoted tool line: {t:?}"
    );
    assert!(!t.contains("\n\n\n"), "{t:?}");
}

/// Master: a dialog nobody answers expires (denied, and the person is told);
/// a choice made in it afterwards is told to have done nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_master_expired_dialog_is_told() {
    let Some(hx) = hx_or_skip("helix_master_expired_dialog", Build::Master) else {
        return;
    };
    let ws = workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "rm",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("Gave up."),
    ])
    .await;
    let languages = languages_toml(&model, data.path(), |tether| {
        let approval = tether
            .get_mut("config")
            .and_then(|c| c.get_mut("approval"))
            .and_then(|a| a.as_table_mut())
            .expect("the tether config has approval");
        approval.insert("timeoutSecs".into(), 1.into());
    });
    let h = Helix::start(&hx, ws.path(), &languages, "notes.md");
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask \"delete build\"")
        .await;
    h.wait_text("Allow once").await;
    let s = h
        .wait_text("Tether: approval of `rm -rf build` expired: no answer within 1 s; denied")
        .await;
    model.wait_requests(2, DEADLINE).await;
    let told = tool_results(&model.requests()[1].body);
    assert!(told[0].1.contains("within 1 s"), "{told:?}");
    // Helix keeps the withdrawn dialog on screen: choosing "Allow once" in
    // it now runs nothing, and says so.
    assert!(s.contains("Allow once"), "{s}");
    {
        h.keys(&["Down"]);
        h.keys(&["Enter"]);
        h.wait_text(
            "Tether: too late: `rm -rf build` had expired (denied); \"Allow once\" did nothing",
        )
        .await;
    }
    assert!(ws.path().join("build/out.txt").exists(), "never run");
}

/// An agent edit to the file open in Helix goes into Helix's buffer only
/// (docs/PROTOCOL.md, "Agent edits and open buffers"): nothing is written
/// behind it, so `u` takes it out, `:w` writes without "the file was modified
/// by an external process", and `:q` quits once the buffer is clean — each as
/// after the person's own edit.
async fn agent_edit_undo_write_quit(build: Build) {
    let test = format!("helix_{build:?}_agent_edit_undo_write_quit");
    let Some(hx) = hx_or_skip(&test, build) else {
        return;
    };
    const LIB: &str = "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
    const EDITED: &str =
        "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a.wrapping_add(b)\n}\n";
    let ws = workspace();
    let lib = ws.path().join("src/lib.rs");
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "e",
            "edit_file",
            json!({"path": "src/lib.rs", "old_text": "a + b", "new_text": "a.wrapping_add(b)"}),
        )]),
        Reply::text("Done."),
    ])
    .await;
    let h = Helix::start(
        &hx,
        ws.path(),
        &languages_toml(&model, data.path(), |_| {}),
        "src/lib.rs",
    );
    h.wait_ready().await;
    h.command("lsp-workspace-command tether.ask \"use wrapping_add\"")
        .await;
    if build == Build::Master {
        // The transcript opened over the file: back to it.
        h.wait_text("Done.").await;
        h.command("buffer-previous").await;
    }
    let s = h.wait_text("a.wrapping_add(b)").await;
    assert!(s.contains("[+]"), "the edit is unsaved in the buffer: {s}");
    wait_until("the turn to end", &h, || model.requests().len() == 2).await;
    let told = tool_results(&model.requests()[1].body)[0].1.clone();
    assert!(
        told.contains("commands you run see the file on disk without it"),
        "{told}"
    );
    assert_eq!(std::fs::read_to_string(&lib).expect("lib.rs"), LIB);

    // `u`: the buffer is the file again, and clean.
    h.normal_mode().await;
    h.keys(&["u"]);
    let s = h
        .wait_screen("the edit undone", |s| {
            s.contains("a + b") && !s.contains("wrapping_add")
        })
        .await;
    assert!(!s.contains("[+]"), "clean after undo: {s}");
    // `U` (redo), then `:w`: written, no complaint about an external change.
    h.keys(&["U"]);
    h.wait_text("a.wrapping_add(b)").await;
    h.command("w").await;
    wait_until("lib.rs written", &h, || {
        std::fs::read_to_string(&lib).is_ok_and(|t| t == EDITED)
    })
    .await;
    let s = h
        .wait_screen("the buffer clean after :w", |s| !s.contains("[+]"))
        .await;
    assert!(!s.contains("external"), "{s}");
    // `:q` quits: nothing unsaved, nothing changed behind the buffer. (On
    // master the transcript is open too, unsaved by design: `:q` names it
    // alone, and `:q!` leaves it.)
    h.command("q").await;
    if build == Build::Master {
        let s = h.wait_text("unsaved buffer remaining").await;
        assert!(
            s.contains("1 unsaved buffer remaining: [\".tether/ask.tether.md\"]"),
            "{s}"
        );
        h.command("q!").await;
    }
    wait_until("Helix to quit", &h, || {
        !Command::new("tmux")
            .args(["-L", &h.socket, "has-session", "-t", "t"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .await;
    assert_eq!(std::fs::read_to_string(&lib).expect("lib.rs"), EDITED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_release_agent_edit_then_undo_write_quit_behave() {
    agent_edit_undo_write_quit(Build::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_master_agent_edit_then_undo_write_quit_behave() {
    agent_edit_undo_write_quit(Build::Master).await;
}
