//! What `tether exec` says when a turn cannot start or cannot reach the
//! model: the config file named is the one this person's environment makes
//! (`$XDG_CONFIG_HOME`), and each problem is printed once.

use std::path::Path;
use std::process::{Command, Output};

fn exec(home: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("elsewhere"))
        .env("XDG_DATA_HOME", home.join("data"))
        .current_dir(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .args(["exec", "hello"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tether exec");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn no_model_names_the_config_file_of_this_environment() {
    let home = tempfile::tempdir().expect("home");
    let (code, _, stderr) = exec(home.path(), &[]);
    assert_ne!(code, 0);
    let path = home.path().join("elsewhere/tether/config.toml");
    assert!(
        stderr.contains(&path.display().to_string()),
        "names $XDG_CONFIG_HOME's file: {stderr}"
    );
    assert!(!stderr.contains("~/.config"), "{stderr}");
}

#[test]
fn an_unreachable_endpoint_is_said_once() {
    let home = tempfile::tempdir().expect("home");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let (code, stdout, stderr) = exec(
        home.path(),
        &[("TETHER_MODEL", "m"), ("TETHER_BASE_URL", &base)],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.matches("cannot reach the model").count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        !stdout.contains("cannot reach"),
        "not as the reply: {stdout}"
    );
}
