//! Against a real llama.cpp server (its own `llama-server`, serving a small
//! real model), started by `.ci/run` and named by `TETHER_LLAMA_URL` with its
//! window in `TETHER_LLAMA_N_CTX`. Without them the tests say so and pass,
//! unless `TETHER_REQUIRE_LLAMA` is set (CI sets it when it started one).

use std::process::Command;

use serde_json::Value;

fn server() -> Option<(String, u64)> {
    let url = std::env::var("TETHER_LLAMA_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let n_ctx = std::env::var("TETHER_LLAMA_N_CTX")
        .ok()
        .and_then(|n| n.parse().ok());
    match (url, n_ctx) {
        (Some(u), Some(n)) => Some((u, n)),
        _ => {
            assert!(
                std::env::var_os("TETHER_REQUIRE_LLAMA").is_none(),
                "TETHER_REQUIRE_LLAMA is set but TETHER_LLAMA_URL / TETHER_LLAMA_N_CTX are not"
            );
            eprintln!(
                "skipped: no real llama.cpp server (set TETHER_LLAMA_URL and TETHER_LLAMA_N_CTX)"
            );
            None
        }
    }
}

#[test]
fn doctor_finds_a_real_llama_cpp_server_and_its_window() {
    let Some((url, n_ctx)) = server() else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    let out = cmd
        .args(["doctor", "--json"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("TETHER_MODEL", "gemma-3-270m")
        .env("TETHER_BASE_URL", &url)
        .current_dir(home.path())
        .output()
        .expect("run tether doctor");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], true, "{report:#}");
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
    };
    // llama.cpp serves whatever name it is asked for, and lists its file.
    assert_ne!(check("endpoint")["status"], "fail");
    let window = check("context window");
    assert_eq!(
        window["detail"].as_str().expect("detail"),
        format!("{n_ctx} tokens (from the server's /props (llama.cpp))")
    );
}
