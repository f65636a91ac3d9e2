//! MCP costs: the start-up of a stdio server, and Tether's own overhead on an
//! MCP call (the server's work excluded).
//!
//! `TETHER_MCP_EVERYTHING=…/mcp-server-everything cargo run --release --example mcp_bench [-- --starts 10 --calls 300]`
//!
//! - **start-up**: `McpManager::specs()` on a fresh manager — spawn (under
//!   `tether supervise` when `--supervisor PATH` is given), `initialize`,
//!   `tools/list` — wall time, median of `--starts`.
//! - **round trip**: `everything__echo` called `--calls` times through
//!   `McpCall::run` (gate with a read-only tool, request, result conversion,
//!   cap, redaction) against the same calls made with the bare `rmcp` client
//!   on a second connection to the same kind of server. The difference of the
//!   medians is what Tether adds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether::config::{Config, Sources};
use tether::gate::{Answer, DenyCause, FixedAnswer, Gate};
use tether::mcp::{McpManager, McpServerConfig, Options};
use tether::tools::{NoBuffers, Redactor, ToolCtx};
use tokio_util::sync::CancellationToken;

struct NoEvents;
impl tether::gate::ApprovalEvents for NoEvents {
    fn approval(&self, _u: tether::protocol::UpdateKind) {}
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn opts(bin: &str, root: PathBuf, supervisor: Option<PathBuf>) -> Options {
    let mut servers = std::collections::BTreeMap::new();
    servers.insert(
        "everything".to_string(),
        McpServerConfig {
            command: Some(bin.to_string()),
            args: vec!["stdio".into()],
            ..Default::default()
        },
    );
    Options {
        servers,
        root,
        supervisor,
        output_cap: 32 * 1024,
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(bin) = std::env::var("TETHER_MCP_EVERYTHING") else {
        eprintln!("set TETHER_MCP_EVERYTHING to server-everything's mcp-server-everything");
        std::process::exit(2);
    };
    let starts = arg("--starts", 10);
    let calls = arg("--calls", 300);
    let args: Vec<String> = std::env::args().collect();
    let supervisor = args
        .iter()
        .position(|a| a == "--supervisor")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let root = std::env::temp_dir();

    let mut times = Vec::new();
    for _ in 0..starts {
        let m = McpManager::new(opts(&bin, root.clone(), supervisor.clone()));
        let t = Instant::now();
        let specs = m.specs().await;
        times.push(t.elapsed());
        assert!(!specs.is_empty(), "the server listed no tools");
        m.stop().await;
    }
    let start_med = median(times.clone());
    println!(
        "stdio start-up (spawn + initialize + tools/list, {} supervisor): median {:.0} ms, min {:.0} ms, max {:.0} ms over {starts}",
        if supervisor.is_some() { "with" } else { "without" },
        start_med.as_secs_f64() * 1e3,
        times.iter().min().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );

    // Through Tether.
    let data = tempfile::tempdir().expect("data");
    let cfg = Config::load(&Sources::default()).expect("config");
    let gate = Gate::new(
        cfg.approval.clone(),
        cfg.delegation.approvals,
        Arc::new(FixedAnswer(Answer::Deny(DenyCause::Person))),
        tether::store::Store::open(data.path()),
        vec![root.clone()],
    );
    let ctx = ToolCtx {
        root: root.clone(),
        buffers: Arc::new(NoBuffers),
        gate,
        cancel: CancellationToken::new(),
        events: Arc::new(NoEvents),
        session_id: "bench".into(),
        turn_session_id: "bench".into(),
        tools: cfg.tools.clone(),
        secret_env: vec![],
        redactor: Arc::new(Redactor::default()),
        progress: None,
    };
    let m = McpManager::new(opts(&bin, root.clone(), supervisor.clone()));
    m.specs().await;

    // The bare SDK, same server, same call, on its own connection.
    use rmcp::model::CallToolRequestParams;
    use rmcp::ServiceExt;
    let mut child = tokio::process::Command::new(&bin)
        .arg("stdio")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server");
    let (out, inp) = (
        child.stdout.take().expect("stdout"),
        child.stdin.take().expect("stdin"),
    );
    let client = ().serve((out, inp)).await.expect("initialize");
    let mut args_map = serde_json::Map::new();
    args_map.insert("message".into(), "hello".into());

    // Interleaved, so both see the same machine load; 20 warm-up rounds.
    let args = r#"{"message": "hello"}"#;
    let mut tether_times = Vec::new();
    let mut bare = Vec::new();
    for i in 0..calls + 20 {
        let call = m
            .parse("everything__echo", args)
            .expect("an MCP tool")
            .expect("arguments");
        let t = Instant::now();
        let r = call.run(&ctx).await;
        let through = t.elapsed();
        assert!(r.output.contains("Echo: hello"), "{}", r.output);
        let t = Instant::now();
        let r = client
            .peer()
            .call_tool(CallToolRequestParams::new("echo").with_arguments(args_map.clone()))
            .await
            .expect("call");
        let direct = t.elapsed();
        assert!(!r.content.is_empty());
        if i >= 20 {
            tether_times.push(through);
            bare.push(direct);
        }
    }
    m.stop().await;
    drop(client);
    let _ = child.kill().await;
    let (tm, bm) = (median(tether_times), median(bare));
    println!(
        "echo round trip over {calls} calls: through Tether median {:.3} ms, bare rmcp median {:.3} ms, Tether's overhead {:.3} ms",
        tm.as_secs_f64() * 1e3,
        bm.as_secs_f64() * 1e3,
        (tm.as_secs_f64() - bm.as_secs_f64()) * 1e3
    );
}
