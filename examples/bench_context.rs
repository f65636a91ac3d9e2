//! Long-session costs (issue 21, BENCHMARKS.md): CPU per tool round trip at
//! calls 20, 200 and 2,000, with and without a context window, and the cost
//! of a compaction.
//!
//! ```text
//! cargo build --release --bin tether --example bench_context
//! target/release/examples/bench_context [--calls N] [--window-only]
//! ```
//!
//! Drives the real `tether` binary (`target/release/tether`) over LSP through
//! the editor emulator against the scripted model server of the tests (real
//! HTTP/SSE on 127.0.0.1, answering at once). One prompt; the model answers
//! with one `read_file` of a 2 KiB file per response. Tether's CPU (utime +
//! stime of the child, from /proc) is read when the server receives request
//! 10, 60, 200, 250, 2,000 and 2,050: the CPU of 50 round trips, divided by
//! 50. Run twice: without a window (the whole history is sent every time) and
//! with `model_context_window = 16384` (compacted; the scripted summariser
//! answers at once, so its share is Tether's own work).
//!
//! The cost of one compaction's CPU in-process (`engine::context::plan` and
//! the view rebuilt from the stored history) is measured on histories of 200
//! and 2,000 tool round trips.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{messages, ModelServer, Reply};
use tether::engine::context::{self, Budget};
use tether::store::StoredMessage;

const MARKS: [usize; 6] = [10, 60, 200, 250, 2000, 2050];

fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = s.rfind(')') else {
        return f64::NAN;
    };
    let f: Vec<f64> = s[close + 2..]
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if f.len() < 13 {
        return f64::NAN;
    }
    (f[11] + f[12]) / hz
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

struct Run {
    per_call_ms: Vec<(usize, f64)>,
    compactions: usize,
    summaries: usize,
    wall: Duration,
    last_request_bytes: usize,
}

async fn session(calls: usize, window: Option<u64>) -> Run {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let body: String = (0..32)
        .map(|i| format!("line {i:02}: {}\n", "x".repeat(56)))
        .collect();
    support::write_file(ws.path(), "out.txt", &body);
    let pid = Arc::new(AtomicU32::new(0));
    let n = Arc::new(AtomicUsize::new(0));
    let summaries = Arc::new(AtomicUsize::new(0));
    let cpu_at: Arc<Mutex<Vec<(usize, f64)>>> = Arc::default();
    let last_bytes = Arc::new(AtomicUsize::new(0));
    let model = {
        let (pid, n, summaries, cpu_at, last_bytes) = (
            pid.clone(),
            n.clone(),
            summaries.clone(),
            cpu_at.clone(),
            last_bytes.clone(),
        );
        ModelServer::start_with(move |req: &Value| {
            let system = messages(req)
                .into_iter()
                .find(|(r, _)| r == "system")
                .map(|(_, c)| c)
                .unwrap_or_default();
            if system.starts_with("You are compacting") {
                summaries.fetch_add(1, Ordering::SeqCst);
                return Reply::text("Asked: read out.txt many times. Done: read it. Next: more.");
            }
            let i = n.fetch_add(1, Ordering::SeqCst);
            last_bytes.store(req["messages"].to_string().len(), Ordering::SeqCst);
            if MARKS.contains(&i) {
                let p = pid.load(Ordering::SeqCst);
                if let Ok(mut v) = cpu_at.lock() {
                    v.push((i, proc_cpu(p)));
                }
            }
            if i >= calls {
                return Reply::text("done");
            }
            Reply::ToolCalls(vec![(
                format!("c{i}"),
                "read_file".into(),
                json!({"path": "out.txt"}).to_string(),
            )])
        })
        .await
    };
    let mut opts = json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
        "maxIterations": calls + 10,
    });
    if let Some(w) = window {
        opts["modelContextWindow"] = json!(w);
    }
    let bin = std::env::var("TETHER_BIN").unwrap_or_else(|_| "target/release/tether".into());
    let cfg = EditorConfig::new(bin, ClientProfile::VsCode, ws.path()).init_options(opts);
    let (ed, _) = Editor::start(cfg).await;
    pid.store(ed.pid(), Ordering::SeqCst);
    let t0 = Instant::now();
    let r = ed
        .request_with_timeout(
            "tether/prompt",
            json!({"text": "read out.txt again and again"}),
            Duration::from_secs(3600),
        )
        .await
        .expect("prompt");
    let wall = t0.elapsed();
    assert_eq!(r["stopReason"], "end_turn", "{r}");
    let compactions = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "compaction")
        .count();
    let v = cpu_at.lock().map(|v| v.clone()).unwrap_or_default();
    let mut per_call_ms = Vec::new();
    for w in v.chunks(2) {
        if let [(a, ca), (b, cb)] = w {
            per_call_ms.push((*a, (cb - ca) * 1000.0 / (*b - *a) as f64));
        }
    }
    ed.shutdown().await;
    Run {
        per_call_ms,
        compactions,
        summaries: summaries.load(Ordering::SeqCst),
        wall,
        last_request_bytes: last_bytes.load(Ordering::SeqCst),
    }
}

fn history(calls: usize) -> Vec<StoredMessage> {
    let msg = |role: &str, content: String| StoredMessage {
        role: tether::protocol::Role::parse(role).expect("a role"),
        content,
        tool_calls: None,
        tool_call_id: None,
        created_ms: 0,
    };
    let out: String = (0..32)
        .map(|i| format!("line {i:02}: {}\n", "x".repeat(56)))
        .collect();
    let mut h = vec![msg("user", "read out.txt again and again".into())];
    for i in 0..calls {
        let mut a = msg("assistant", String::new());
        a.tool_calls = Some(json!([{"id": format!("c{i}"), "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\":\"out.txt\"}"}}]));
        let mut t = msg("tool", out.clone());
        t.tool_call_id = Some(format!("c{i}"));
        h.push(a);
        h.push(t);
    }
    h
}

fn compaction_cpu(calls: usize) -> (f64, usize) {
    let h = history(calls);
    let budget = Budget {
        window: 16_384,
        reserve: 4096,
        ratio: 0.25,
    };
    let reps = 20;
    let t0 = Instant::now();
    let mut kept = 0;
    for _ in 0..reps {
        let plan = context::plan(&h, &budget, 6000, true);
        let mut h2 = h.clone();
        h2.push(context::marker(plan.cuts, "summary".into()));
        kept = context::view(&h2, budget.message_cap()).len();
    }
    (t0.elapsed().as_secs_f64() * 1000.0 / reps as f64, kept)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2060usize);
    println!("load before: {}", load());
    let window_only = std::env::args().any(|a| a == "--window-only");
    for (name, window) in [("no window", None), ("window 16384", Some(16_384u64))] {
        if window_only && window.is_none() {
            continue;
        }
        let r = session(calls, window).await;
        println!(
            "{name}: {calls} calls in {:.1} s; compactions {}, summaries {}; last request {} bytes of messages; load {}",
            r.wall.as_secs_f64(),
            r.compactions,
            r.summaries,
            r.last_request_bytes,
            load()
        );
        for (at, ms) in &r.per_call_ms {
            println!("  CPU per tool round trip at call {at}: {ms:.2} ms (mean of 50)");
        }
    }
    for n in [200, 2000] {
        let (ms, kept) = compaction_cpu(n);
        println!(
            "compaction of a {n}-call history (plan + view, no model call): {ms:.2} ms, view {kept} messages"
        );
    }
}
