//! `tether doctor` on the real binary, as a person runs it when something is
//! off: a healthy setup passes; no model, an endpoint nobody listens on, a
//! key the server refuses and a data dir that cannot be written each fail
//! with a one-line fix; the key is never printed; the JSON report says the
//! same; each setting names the source that won.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::model::{ModelServer, Reply};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tether doctor ARGS` with a clean environment: its own HOME and
/// XDG dirs, no Tether or OpenAI variables but those given.
fn doctor(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("PATH", home.join("bin"))
        .current_dir(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .arg("doctor")
        .args(args)
        .output()
        .expect("run tether doctor");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The report's line for check `name`, and the fix line under it, if any.
fn check<'a>(out: &'a str, name: &str) -> (&'a str, Option<&'a str>) {
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.contains(&format!("] {name}: ")) {
            // A detail may run over several lines; the fix ends the check.
            let fix = lines
                .take_while(|n| !n.trim_start().starts_with('[') && !n.is_empty())
                .find(|n| n.trim_start().starts_with("fix: "));
            return (l, fix);
        }
    }
    panic!("no `{name}` check in:\n{out}");
}

fn json_check(report: &Value, name: &str) -> Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no `{name}` check in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_passes_and_names_where_each_setting_came_from() {
    let home = tempfile::tempdir().expect("home");
    let server = ModelServer::start(vec![]).await;
    server.serve_models(&["scripted-model", "other"]);
    std::fs::create_dir_all(home.path().join("config/tether")).expect("config dir");
    std::fs::write(
        home.path().join("config/tether/config.toml"),
        "max_iterations = 7\n[approval]\nmode = \"deny\"\n",
    )
    .expect("config");
    let key = "sk-doctor-test-0123456789abcdef";
    let base = server.base_url();
    let env = [
        ("TETHER_MODEL", "scripted-model"),
        ("TETHER_BASE_URL", base.as_str()),
        ("TETHER_API_KEY", key),
    ];
    let r = doctor(home.path(), &env, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (endpoint, fix) = check(&r.stdout, "endpoint");
    assert!(endpoint.contains("[ok  ]") && endpoint.contains("lists scripted-model"));
    assert_eq!(fix, None);
    assert!(check(&r.stdout, "api key").0.contains("$TETHER_API_KEY"));
    assert!(
        !r.stdout.contains(key) && !r.stderr.contains(key),
        "key printed"
    );
    // The request carried the key (the server saw it), the report did not.
    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/v1/models");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    // Each setting with the source that won.
    let config_file = home.path().join("config/tether/config.toml");
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no setting {key}:\n{}", r.stdout))
            .to_string()
    };
    assert!(line("model").contains("[environment $TETHER_MODEL]"));
    assert!(line("max_iterations").contains(&format!("[{}]", config_file.display())));
    assert!(line("approval.mode").contains("deny"));
    assert!(line("approval.timeout_secs").contains("[default]"));
    assert!(r
        .stdout
        .contains(&format!("{} — read", config_file.display())));
    assert!(check(&r.stdout, "data dir").0.contains("[ok  ]"));

    // The JSON report says the same.
    let j = doctor(home.path(), &env, &["--json"]);
    assert_eq!(j.code, 0);
    let report: Value = serde_json::from_str(&j.stdout).expect("JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(json_check(&report, "endpoint")["status"], "ok");
    assert!(!j.stdout.contains(key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_list_a_one_token_completion_proves_the_endpoint() {
    let home = tempfile::tempdir().expect("home");
    let server = ModelServer::start(vec![Reply::text("OK")]).await;
    let base = server.base_url();
    let r = doctor(
        home.path(),
        &[("TETHER_MODEL", "m"), ("TETHER_BASE_URL", &base)],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(check(&r.stdout, "endpoint").0.contains("one-token"));
    let reqs = server.requests();
    let completion = reqs
        .iter()
        .find(|q| q.path == "/v1/chat/completions")
        .expect("a completion request");
    assert_eq!(completion.body["max_tokens"], 1);
    assert_eq!(completion.body["model"], "m");
}

#[test]
fn no_model_configured_fails_with_the_files_to_edit() {
    let home = tempfile::tempdir().expect("home");
    let r = doctor(home.path(), &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (line, fix) = check(&r.stdout, "model");
    assert!(line.contains("[FAIL]") && line.contains("no model configured"));
    let fix = fix.expect("a fix");
    // The config path as this person's XDG_CONFIG_HOME makes it.
    let path = home.path().join("config/tether/config.toml");
    assert!(fix.contains("TETHER_MODEL"), "{fix}");
    assert!(fix.contains(&path.display().to_string()), "{fix}");
}

#[test]
fn an_unreachable_endpoint_fails_naming_the_setting_to_change() {
    let home = tempfile::tempdir().expect("home");
    // A port that was just free: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let r = doctor(
        home.path(),
        &[("TETHER_MODEL", "m"), ("TETHER_BASE_URL", &base)],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (line, fix) = check(&r.stdout, "endpoint");
    assert!(
        line.contains("[FAIL]") && line.contains("cannot reach"),
        "{line}"
    );
    assert!(fix.expect("fix").contains("$TETHER_BASE_URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_naming_the_variable_it_came_from() {
    let home = tempfile::tempdir().expect("home");
    let server = ModelServer::start_with(|_| Reply::error(401, "Incorrect API key provided")).await;
    let base = server.base_url();
    let key = "sk-wrong-key-0123456789";
    let r = doctor(
        home.path(),
        &[
            ("TETHER_MODEL", "m"),
            ("TETHER_BASE_URL", &base),
            ("MY_KEY", key),
            ("TETHER_API_KEY", "sk-not-this-one-0123456789"),
        ],
        &[],
    );
    // apiKeyEnv is not set, so TETHER_API_KEY is the key used.
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (line, fix) = check(&r.stdout, "endpoint");
    assert!(line.contains("refused the API key (HTTP 401)"), "{line}");
    assert!(fix.expect("fix").contains("$TETHER_API_KEY"));
    assert!(!r.stdout.contains("sk-not-this-one"), "key printed");
}

#[test]
fn an_unwritable_data_dir_fails_with_the_setting_to_change() {
    let home = tempfile::tempdir().expect("home");
    // A regular file where the data dir should be: unwritable as a dir even
    // for root (tests run as root here, so permissions alone would not do).
    let blocker = home.path().join("blocker");
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let data = blocker.join("tether");
    let r = doctor(
        home.path(),
        &[
            ("TETHER_MODEL", "m"),
            ("TETHER_BASE_URL", "http://127.0.0.1:9/v1"),
            ("TETHER_DATA_DIR", data.to_str().expect("utf-8 path")),
        ],
        &["--json"],
    );
    assert_eq!(r.code, 1);
    let report: Value = serde_json::from_str(&r.stdout).expect("JSON report");
    let c = json_check(&report, "data dir");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"]
        .as_str()
        .expect("detail")
        .contains("not writable"));
    assert!(c["fix"].as_str().expect("fix").contains("TETHER_DATA_DIR"));
}

#[test]
fn a_broken_config_file_fails_with_its_path() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("config/tether")).expect("config dir");
    let path = home.path().join("config/tether/config.toml");
    std::fs::write(&path, "model = \n").expect("config");
    let r = doctor(home.path(), &[], &[]);
    assert_eq!(r.code, 1);
    let (line, fix) = check(&r.stdout, "config");
    assert!(line.contains("invalid config file"), "{line}");
    assert!(fix.expect("fix").contains(&path.display().to_string()));
}

#[test]
fn editors_on_path_get_the_snippet_that_starts_this_binary() {
    let home = tempfile::tempdir().expect("home");
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for name in ["nvim", "hx", "code"] {
        let p = bin.join(name);
        std::fs::write(&p, "#!/bin/sh\n").expect("fake editor");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let r = doctor(home.path(), &[("TETHER_MODEL", "m")], &["--json"]);
    let report: Value = serde_json::from_str(&r.stdout).expect("JSON report");
    let editors = report["editors"].as_array().expect("editors");
    let names: Vec<&str> = editors
        .iter()
        .map(|e| e["editor"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Neovim", "Helix", "VS Code"]);
    let exe = env!("CARGO_BIN_EXE_tether");
    for e in editors {
        let snippet = e["snippet"].as_str().expect("snippet");
        assert!(snippet.contains(exe), "{snippet}");
    }
    let helix = editors[1]["snippet"].as_str().expect("snippet");
    toml::from_str::<toml::Value>(helix).expect("the Helix snippet is valid TOML");
    let vscode = editors[2]["snippet"].as_str().expect("snippet");
    serde_json::from_str::<Value>(vscode).expect("the VS Code snippet is valid JSON");
}

#[test]
fn text_from_config_and_servers_is_shown_not_obeyed() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("config/tether")).expect("config dir");
    // A model name with OSC 52 (clipboard), clear-screen and a C1 control.
    std::fs::write(
        home.path().join("config/tether/config.toml"),
        "model = \"m\\u001b]52;c;aGk=\\u0007\\u001b[2J\\u009b\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .expect("config");
    for args in [&[][..], &["--json"][..]] {
        let r = doctor(home.path(), &[], args);
        assert!(
            r.stdout.contains("52;c;aGk="),
            "the name is shown: {}",
            r.stdout
        );
        let bad: Vec<char> = r
            .stdout
            .chars()
            .filter(|c| {
                (c.is_control() && *c != '\n' && *c != '\t') || ('\u{80}'..='\u{9f}').contains(c)
            })
            .collect();
        assert!(bad.is_empty(), "{args:?}: control characters {bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_md_files_a_turn_reads_are_listed() {
    let home = tempfile::tempdir().expect("home");
    let server = ModelServer::start(vec![]).await;
    server.serve_models(&["scripted-model"]);
    let repo = home.path().join("repo");
    let ws = repo.join("app");
    std::fs::create_dir_all(repo.join(".git")).expect(".git");
    std::fs::create_dir_all(&ws).expect("ws");
    std::fs::create_dir_all(home.path().join("config/tether")).expect("config dir");
    std::fs::write(home.path().join("config/tether/AGENTS.md"), "mine\n").expect("personal");
    std::fs::write(repo.join("AGENTS.md"), "repo rules\n").expect("repo");
    std::fs::write(home.path().join("AGENTS.md"), "outside the repository\n").expect("outside");
    let base = server.base_url();
    let env = [
        ("TETHER_MODEL", "scripted-model"),
        ("TETHER_BASE_URL", base.as_str()),
    ];
    let root = ws.display().to_string();
    let r = doctor(home.path(), &env, &["--root", &root]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (line, _) = check(&r.stdout, "project instructions");
    let personal = home.path().join("config/tether/AGENTS.md");
    let repo_file = repo.join("AGENTS.md");
    assert!(
        line.contains(&personal.display().to_string())
            && line.contains(&repo_file.display().to_string()),
        "{line}"
    );
    assert!(
        !line.contains(&home.path().join("AGENTS.md").display().to_string()),
        "a file above the repository is not read: {line}"
    );
}
