//! Agent-overhead benchmarks of the real `tether` binary (issue 12, BENCHMARKS.md).
//!
//! ```text
//! cargo build --release --bin tether --example bench_agent
//! target/release/examples/bench_agent [--smoke] [--only LIST] [--out DIR]
//!     [--bin PATH] [--hermes PATH | --no-hermes]
//! ```
//!
//! Starts the scripted OpenAI-compatible SSE server of the integration tests
//! (`tests/support/model.rs`, real HTTP on 127.0.0.1, answering at once) in this
//! process, and drives the real `tether` binary as an LSP child through the
//! editor emulator (`tests/support/editor.rs`, real `Content-Length` framing,
//! the captured VS Code `initialize`). Scenarios (`--only` takes their names):
//!
//! - `startup`   spawn → `initialize` response (median of 20) and RSS after it;
//! - `session`   a 100-turn session (text replies), RSS after it;
//! - `tools`     one turn of 200 model responses with one tool call each, cycling
//!   read_file / search / edit_file / run_command `true`: wall and CPU per round trip;
//! - `compare`   the same 200-call session headless, `tether exec` against
//!   hermes-agent's `hermes chat -q`, both on this same server: wall, CPU, peak
//!   RSS, ratios (how hermes is configured: see `compare` and bench/RESULTS.md);
//! - `parallel`  8 × `sleep 0.2` in one response: batch wall / slowest call;
//! - `subagents` 16 subagents × 20 calls against the same 320 calls by one agent;
//! - `approvals` approval round trips (dialog request → decision applied) minus the
//!   emulated editor's think time;
//! - `stream`    a 10,000-chunk stream parsed and forwarded to the editor as
//!   `tether/update` text events: chunks/s and CPU %.
//!
//! Writes `OUT/agent.jsonl` (one JSON object per figure, with the load average
//! when it was taken) and `OUT/agent.md` (a Markdown table), and prints the table.
//! `--smoke` runs tiny sizes (for CI) and says so in every record.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{choose_action, ClientProfile, Editor, EditorConfig, ShowMessagePolicy};
use support::model::{call, messages, tool_names, ModelServer, Reply};

const LONG: Duration = Duration::from_secs(900);

/// How long the emulated person looks at each approval dialog.
const THINK: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Sizes and arguments

#[derive(Clone, Copy)]
struct Sizes {
    startup_spawns: usize,
    session_turns: usize,
    tool_calls: usize,
    compare_calls: usize,
    parallel_reps: usize,
    children: usize,
    calls_per_child: usize,
    approvals: usize,
    stream_chunks: usize,
    stream_reps: usize,
}

const FULL: Sizes = Sizes {
    startup_spawns: 20,
    session_turns: 100,
    tool_calls: 200,
    compare_calls: 200,
    parallel_reps: 5,
    children: 16,
    calls_per_child: 20,
    approvals: 50,
    stream_chunks: 10_000,
    stream_reps: 5,
};

const SMOKE: Sizes = Sizes {
    startup_spawns: 3,
    session_turns: 5,
    tool_calls: 12,
    compare_calls: 8,
    parallel_reps: 1,
    children: 3,
    calls_per_child: 3,
    approvals: 3,
    stream_chunks: 1_000,
    stream_reps: 1,
};

const SCENARIOS: [&str; 8] = [
    "startup",
    "session",
    "tools",
    "compare",
    "parallel",
    "subagents",
    "approvals",
    "stream",
];

struct Args {
    smoke: bool,
    only: Vec<String>,
    out: PathBuf,
    bin: PathBuf,
    hermes: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/examples/bench_agent → target/<profile>/tether
    let default_bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("tether"))
        .unwrap_or_else(|| PathBuf::from("tether"));
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let default_hermes = crate_dir.join("bench/.venv/bin/hermes");
    let mut a = Args {
        smoke: false,
        only: SCENARIOS.iter().map(|s| s.to_string()).collect(),
        out: crate_dir.join("bench/out"),
        bin: default_bin,
        hermes: default_hermes.exists().then_some(default_hermes),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--smoke" => a.smoke = true,
            "--only" => {
                a.only = value()?.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = a.only.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                    return Err(format!("unknown scenario {bad:?}; known: {SCENARIOS:?}"));
                }
            }
            "--out" => a.out = PathBuf::from(value()?),
            "--bin" => a.bin = PathBuf::from(value()?),
            "--hermes" => a.hermes = Some(PathBuf::from(value()?)),
            "--no-hermes" => a.hermes = None,
            other => {
                return Err(format!(
                    "unknown argument {other}; use --smoke --only LIST --out DIR --bin PATH --hermes PATH --no-hermes"
                ))
            }
        }
    }
    if !a.bin.exists() {
        return Err(format!(
            "tether binary not found at {} (build it: cargo build --release)",
            a.bin.display()
        ));
    }
    Ok(a)
}

// ---------------------------------------------------------------------------
// Records

#[derive(Clone)]
struct Rec {
    scenario: &'static str,
    metric: String,
    value: f64,
    unit: &'static str,
    detail: String,
    load: [f64; 3],
}

struct Report {
    recs: Mutex<Vec<Rec>>,
    jsonl: Mutex<std::fs::File>,
    smoke: bool,
}

impl Report {
    fn add(
        &self,
        scenario: &'static str,
        metric: &str,
        value: f64,
        unit: &'static str,
        detail: &str,
    ) {
        let r = Rec {
            scenario,
            metric: metric.to_string(),
            value,
            unit,
            detail: detail.to_string(),
            load: loadavg(),
        };
        let line = json!({
            "scenario": r.scenario,
            "metric": r.metric,
            "value": r.value,
            "unit": r.unit,
            "detail": r.detail,
            "load1": r.load[0],
            "load5": r.load[1],
            "load15": r.load[2],
            "smoke": self.smoke,
            "command": command_for(scenario, self.smoke),
        });
        eprintln!(
            "  {:<10} {:<58} {} {}",
            scenario,
            r.metric,
            fmt_value(value, unit),
            r.detail
        );
        if let Ok(mut f) = self.jsonl.lock() {
            let _ = writeln!(f, "{line}");
        }
        self.recs.lock().expect("recs lock").push(r);
    }
}

fn command_for(scenario: &str, smoke: bool) -> String {
    let smoke = if smoke { " --smoke" } else { "" };
    format!("target/release/examples/bench_agent{smoke} --only {scenario}")
}

fn fmt_value(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "—".into();
    }
    match unit {
        "ms" | "µs" | "s" | "MiB" => {
            if v >= 100.0 {
                format!("{v:.0} {unit}")
            } else if v >= 10.0 {
                format!("{v:.1} {unit}")
            } else {
                format!("{v:.2} {unit}")
            }
        }
        "x" => format!("{v:.2}×"),
        "chunks/s" => format!("{v:.0} chunks/s"),
        "%" => format!("{v:.1} %"),
        "" => format!("{v:.0}"),
        _ => format!("{v:.2} {unit}"),
    }
}

/// "12.3 MiB", or "—" for a figure that could not be taken.
fn mib(v: f64) -> String {
    if v.is_nan() {
        "— (run too short to sample)".into()
    } else {
        format!("{v:.1} MiB")
    }
}

fn markdown(recs: &[Rec]) -> String {
    let mut s = String::from(
        "| scenario | figure | value | detail | load 1/5/15 min |\n|---|---|---|---|---|\n",
    );
    for r in recs {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} / {:.2} / {:.2} |\n",
            r.scenario,
            r.metric,
            fmt_value(r.value, r.unit),
            r.detail.replace('|', "\\|"),
            r.load[0],
            r.load[1],
            r.load[2]
        ));
    }
    s
}

// ---------------------------------------------------------------------------
// /proc helpers

fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

/// A `Vm*` line of /proc/PID/status, in MiB.
fn status_mib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds of a live process: (its own threads, its reaped children).
fn proc_cpu(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = s.rfind(')') else {
        return (f64::NAN, f64::NAN);
    };
    let f: Vec<f64> = s[close + 2..]
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if f.len() < 15 {
        return (f64::NAN, f64::NAN);
    }
    ((f[11] + f[12]) / hz, (f[13] + f[14]) / hz)
}

/// CPU seconds of the live threads of a process, from their schedstat (ns
/// precision; a thread that exits meanwhile takes its time with it).
fn threads_cpu(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// `PF_FORKNOEXEC` in /proc/PID/stat's flags: forked, not yet exec'd.
const PF_FORKNOEXEC: u64 = 0x40;

/// Proportional set size (MiB) of all live descendants of `root` (and of
/// `root` itself when `with_root`), from one /proc scan.
fn tree_rss_mib(root: i32, with_root: bool) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    // pid → (ppid, forked but not yet exec'd)
    let mut parent: HashMap<i32, (i32, bool)> = HashMap::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ppid = f.get(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        let flags: u64 = f.get(6).and_then(|x| x.parse().ok()).unwrap_or(0);
        parent.insert(pid, (ppid, flags & PF_FORKNOEXEC != 0));
    }
    let mut total_kib = 0.0;
    for (&pid, &(_, forked_only)) in &parent {
        // A child between (v)fork and exec shares its parent's memory (with
        // vfork, the very same mm, which PSS would count twice): skip it.
        if forked_only {
            continue;
        }
        let mut p = pid;
        let mut hops = 0;
        while p != root && p > 1 && hops < 64 {
            p = parent.get(&p).map_or(0, |x| x.0);
            hops += 1;
        }
        if p == root && (with_root || pid != root) {
            // PSS, not RSS: a child forked but not yet exec'd shares its
            // parent's pages, which RSS would count twice.
            if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
                total_kib += rollup
                    .lines()
                    .find(|l| l.starts_with("Pss:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|x| x.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    total_kib / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------
// Workspace and the scripted session

/// A workspace: a git skeleton, 50 small Rust files (`src/f00.rs` …) to read and
/// search, and `notes.txt` ("value 0") for the small edits.
fn make_workspace(dir: &Path) {
    support::write_file(dir, ".git/HEAD", "ref: refs/heads/main\n");
    for d in [".git/objects", ".git/refs/heads"] {
        std::fs::create_dir_all(dir.join(d)).expect("git skeleton");
    }
    support::write_file(dir, ".gitignore", "target/\n");
    support::write_file(
        dir,
        "README.md",
        "# Bench\n\nA workspace for the agent benchmarks.\n",
    );
    support::write_file(dir, "notes.txt", "value 0\n");
    for k in 0..50 {
        let mut s = format!("//! Module {k:02}.\n\n");
        for j in 0..12 {
            s.push_str(&format!(
                "/// Returns {j} plus {k}.\npub fn f{k:02}_{j}(x: u32) -> u32 {{\n    x + {j} + {k}\n}}\n\n"
            ));
        }
        support::write_file(dir, &format!("src/f{k:02}.rs", k = k), &s);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dialect {
    Tether,
    Hermes,
}

/// The i-th call of the scripted session: reads, searches, small edits and
/// `true` commands in turn (50 of each in 200). The hermes dialect uses its
/// closest tools: read_file, search_files, patch (replace mode), terminal.
fn session_call(d: Dialect, i: usize) -> (String, Value) {
    let k = (i / 4) % 50;
    let j = i / 4;
    let (name, args) = match (d, i % 4) {
        (_, 0) => ("read_file", json!({"path": format!("src/f{k:02}.rs")})),
        (Dialect::Tether, 1) => (
            "search",
            json!({"pattern": format!("fn f{k:02}_7\\b"), "path": "src"}),
        ),
        (Dialect::Hermes, 1) => (
            "search_files",
            json!({"pattern": format!("fn f{k:02}_7\\b"), "path": "src"}),
        ),
        (Dialect::Tether, 2) => (
            "edit_file",
            json!({"path": "notes.txt", "old_text": format!("value {j}"), "new_text": format!("value {}", j + 1)}),
        ),
        (Dialect::Hermes, 2) => (
            "patch",
            json!({"mode": "replace", "path": "notes.txt", "old_string": format!("value {j}"), "new_string": format!("value {}", j + 1)}),
        ),
        (Dialect::Tether, _) => ("run_command", json!({"command": "true"})),
        (Dialect::Hermes, _) => ("terminal", json!({"command": "true"})),
    };
    (name.to_string(), args)
}

/// Edits among the first `n` calls (what notes.txt must say afterwards).
fn edits_in(n: usize) -> usize {
    (0..n).filter(|i| i % 4 == 2).count()
}

fn tool_count(body: &Value) -> usize {
    messages(body).iter().filter(|(r, _)| r == "tool").count()
}

fn system_text(body: &Value) -> String {
    messages(body)
        .into_iter()
        .find(|(r, _)| r == "system")
        .map(|(_, t)| t)
        .unwrap_or_default()
}

fn first_user_line(body: &Value) -> String {
    messages(body)
        .into_iter()
        .find(|(r, _)| r == "user")
        .map(|(_, t)| t.lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// A reply function for the scripted session of `n` calls: the dialect comes
/// from the tools the agent offers, progress from the tool results it sends.
/// Requests without tools (auxiliary calls) get a short text and are counted.
fn session_replies(
    n: Arc<AtomicU64>,
    aux: Arc<AtomicU64>,
) -> impl Fn(&Value) -> Reply + Send + Sync {
    move |body| {
        let names = tool_names(body);
        let dialect = if names.iter().any(|t| t == "terminal") {
            Dialect::Hermes
        } else if names.iter().any(|t| t == "run_command") {
            Dialect::Tether
        } else {
            aux.fetch_add(1, Ordering::SeqCst);
            return Reply::Text("ok".into());
        };
        let done = tool_count(body);
        if done < n.load(Ordering::SeqCst) as usize {
            let (name, args) = session_call(dialect, done);
            Reply::ToolCalls(vec![call(&format!("call_{done}"), &name, args)])
        } else {
            Reply::Text(format!("Done: {done} tool calls."))
        }
    }
}

fn init_opts(model: &ModelServer, data: &Path, extra: Value) -> Value {
    let mut opts = json!({"model": "scripted", "baseUrl": model.base_url(), "dataDir": data});
    if let (Some(o), Some(e)) = (opts.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    opts
}

fn editor_cfg(bin: &Path, root: &Path, opts: Value) -> EditorConfig {
    EditorConfig::new(bin, ClientProfile::VsCode, root).init_options(opts)
}

async fn prompt(ed: &Editor, session: Option<&str>, text: &str) -> Value {
    let mut p = json!({"text": text});
    if let Some(s) = session {
        p["sessionId"] = json!(s);
    }
    let r = ed
        .request_with_timeout("tether/prompt", p, LONG)
        .await
        .unwrap_or_else(|e| panic!("tether/prompt failed: {e}"));
    assert_eq!(
        r["stopReason"],
        "end_turn",
        "turn did not end normally: {r}\n{}",
        ed.dump()
    );
    support::turn_ended(ed, &r).await;
    r
}

// ---------------------------------------------------------------------------
// Scenarios

async fn startup(a: &Args, sz: Sizes, rep: &Report) {
    let model = ModelServer::start_with(|_| Reply::Text("ok".into())).await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let mut times = Vec::new();
    let mut rss_init = Vec::new();
    let mut rss_settled = Vec::new();
    // One unmeasured start creates the database, as an editor's first start would.
    for i in 0..=sz.startup_spawns {
        let cfg = editor_cfg(&a.bin, ws.path(), init_opts(&model, data.path(), json!({})));
        let params = support::editor::initialize_params(&cfg);
        let t0 = Instant::now();
        let mut ed = Editor::spawn(&cfg);
        ed.initialize(params).await.expect("initialize");
        let took = t0.elapsed();
        let r0 = status_mib(ed.pid(), "VmRSS");
        ed.notify("initialized", json!({})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r1 = status_mib(ed.pid(), "VmRSS");
        ed.shutdown().await;
        if i > 0 {
            times.push(ms(took));
            rss_init.push(r0);
            rss_settled.push(r1);
        }
    }
    let t = sorted(times);
    let n = t.len();
    rep.add(
        "startup",
        &format!("spawn → initialize response, median of {n}"),
        percentile(&t, 0.5),
        "ms",
        &format!(
            "min {:.1} / p90 {:.1} / max {:.1} ms",
            t[0],
            percentile(&t, 0.9),
            t[n - 1]
        ),
    );
    let r0 = sorted(rss_init);
    let r1 = sorted(rss_settled);
    rep.add(
        "startup",
        "RSS right after the initialize response (median)",
        percentile(&r0, 0.5),
        "MiB",
        "VmRSS from /proc/PID/status",
    );
    rep.add(
        "startup",
        "RSS 200 ms after `initialized` (median)",
        percentile(&r1, 0.5),
        "MiB",
        &format!("min {:.1} / max {:.1} MiB", r1[0], r1[n - 1]),
    );
}

async fn session(a: &Args, sz: Sizes, rep: &Report) {
    let reply = "Here is a short answer of a few sentences, as a model would give it. \
                 It names a function, `f07_3`, and a file, src/f07.rs, and suggests a test. \
                 Nothing more is needed for this turn.";
    let model = ModelServer::start_with(move |_| Reply::Text(reply.into())).await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let (ed, _) = Editor::start(editor_cfg(
        &a.bin,
        ws.path(),
        init_opts(&model, data.path(), json!({})),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = status_mib(ed.pid(), "VmRSS");
    let (c0, _) = proc_cpu(ed.pid());
    let mut sid: Option<String> = None;
    let mut lat = Vec::new();
    let t0 = Instant::now();
    for i in 0..sz.session_turns {
        let t = Instant::now();
        let r = prompt(
            &ed,
            sid.as_deref(),
            &format!("Question {i}: what does f07_3 return?"),
        )
        .await;
        lat.push(ms(t.elapsed()));
        sid = r["sessionId"].as_str().map(str::to_string);
    }
    let wall = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss1 = status_mib(ed.pid(), "VmRSS");
    let hwm = status_mib(ed.pid(), "VmHWM");
    let (c1, _) = proc_cpu(ed.pid());
    let turns = sz.session_turns;
    let reqs = model.requests();
    let last_msgs = reqs.last().map(|r| messages(&r.body).len()).unwrap_or(0);
    ed.shutdown().await;
    let l = sorted(lat);
    rep.add(
        "session",
        &format!("RSS after a {turns}-turn session"),
        rss1,
        "MiB",
        &format!("{rss0:.1} MiB before the first turn; peak (VmHWM) {hwm:.1} MiB; last request carried {last_msgs} messages"),
    );
    rep.add(
        "session",
        "text turn, prompt → result (median)",
        percentile(&l, 0.5),
        "ms",
        &format!(
            "p95 {:.1} ms; {} model requests; {:.2} s wall, {:.2} s CPU (tether) for all turns",
            percentile(&l, 0.95),
            reqs.len(),
            wall.as_secs_f64(),
            c1 - c0
        ),
    );
}

async fn tools(a: &Args, sz: Sizes, rep: &Report) {
    let n = sz.tool_calls;
    let model = ModelServer::start_with(session_replies(
        Arc::new(AtomicU64::new(n as u64)),
        Arc::new(AtomicU64::new(0)),
    ))
    .await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let opts = init_opts(&model, data.path(), json!({"maxIterations": n + 10}));
    let (ed, _) = Editor::start(editor_cfg(&a.bin, ws.path(), opts)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = ed.pid();
    let (c0, k0) = proc_cpu(pid);
    let t0 = Instant::now();
    let r = prompt(&ed, None, "Run the scripted session.").await;
    let wall = t0.elapsed();
    let (c1, k1) = proc_cpu(pid);
    let rss = status_mib(pid, "VmRSS");
    let hwm = status_mib(pid, "VmHWM");
    let completed = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "toolCall" && u["status"] == "completed")
        .count();
    let notes = std::fs::read_to_string(ws.path().join("notes.txt")).unwrap_or_default();
    let reqs = model.requests().len();
    ed.shutdown().await;
    assert_eq!(completed, n, "every call completed ({r})");
    assert_eq!(
        notes.trim(),
        format!("value {}", edits_in(n)),
        "every edit applied"
    );
    let per = |x: f64| x * 1000.0 / n as f64;
    rep.add(
        "tools",
        &format!("{n}-call session: wall per tool round trip"),
        per(wall.as_secs_f64()),
        "ms",
        &format!(
            "{:.2} s for {n} calls + final reply ({reqs} model requests, 1 call each: read_file/search/edit_file/run_command `true` in turn)",
            wall.as_secs_f64()
        ),
    );
    rep.add(
        "tools",
        &format!("{n}-call session: tether CPU per tool round trip"),
        per(c1 - c0),
        "ms",
        &format!(
            "{:.2} s CPU in the tether process; +{:.2} s in its reaped children (command supervisors and shells) = {:.2} ms/call",
            c1 - c0,
            k1 - k0,
            per(c1 - c0 + k1 - k0)
        ),
    );
    rep.add(
        "tools",
        &format!("RSS after the {n}-call session"),
        rss,
        "MiB",
        &format!("peak (VmHWM) {hwm:.1} MiB"),
    );
}

/// Interval of the process-tree RSS sampler.
const SAMPLE_MS: u64 = 50;

/// `bench_agent --measure-child OUT.json -- PROG ARGS…`: runs PROG (same stdio,
/// env and cwd), reaps it with wait4 and writes its wall time, CPU time and
/// peak RSS to OUT.json; exits with its status.
///
/// Why a wrapper: a child spawned straight from this (large) driver inherits
/// the driver's memory high-water mark into its `ru_maxrss` (vfork/exec keep
/// the old mm's peak). The wrapper is small, so PROG's `ru_maxrss` is PROG's own.
fn measure_child(out: &str, argv: &[String]) -> std::process::ExitCode {
    let Some((prog, args)) = argv.split_first() else {
        eprintln!("bench_agent --measure-child: no command");
        return std::process::ExitCode::from(2);
    };
    let t0 = Instant::now();
    let child = match std::process::Command::new(prog).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench_agent --measure-child: spawn {prog}: {e}");
            return std::process::ExitCode::from(127);
        }
    };
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by wait4 below, with its rusage
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter for wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own, not yet reaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        eprintln!(
            "bench_agent --measure-child: wait4: {}",
            std::io::Error::last_os_error()
        );
        return std::process::ExitCode::from(125);
    }
    let wall = t0.elapsed();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (code, signal) = if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status), 0)
    } else {
        (128 + libc::WTERMSIG(status), libc::WTERMSIG(status))
    };
    let v = json!({
        "wall_s": wall.as_secs_f64(),
        "utime_s": tv(ru.ru_utime),
        "stime_s": tv(ru.ru_stime),
        "maxrss_kib": ru.ru_maxrss,
        "exit": code,
        "signal": signal,
    });
    if let Err(e) = std::fs::write(out, v.to_string()) {
        eprintln!("bench_agent --measure-child: write {out}: {e}");
        return std::process::ExitCode::from(125);
    }
    std::process::ExitCode::from(code as u8)
}

/// One headless run: wall, CPU (wait4 rusage, waited-for descendants included)
/// and peak RSS (ru_maxrss) of the agent, through the [`measure_child`]
/// wrapper, and the peak RSS of its whole process tree (sampled).
struct RunStats {
    wall: Duration,
    cpu: f64,
    maxrss_mib: f64,
    tree_peak_mib: f64,
    /// How many times the tree was sampled.
    samples: usize,
    ok: bool,
    status: String,
}

async fn run_measured(cmd: std::process::Command, log: &Path, timeout: Duration) -> RunStats {
    let out = std::fs::File::create(log.with_extension("stdout")).expect("log file");
    let err = std::fs::File::create(log.with_extension("stderr")).expect("log file");
    let stats_path = log.with_extension("rusage.json");
    let _ = std::fs::remove_file(&stats_path);
    let mut w = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    w.arg("--measure-child")
        .arg(&stats_path)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    use std::os::unix::process::CommandExt as _;
    w.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let mut child = w.spawn().unwrap_or_else(|e| panic!("spawn {w:?}: {e}"));
    let pid = child.id() as i32;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new((0.0f64, 0usize)));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // The wrapper's descendants: the agent and whatever it runs.
                let r = tree_rss_mib(pid, false);
                if let Ok(mut p) = peak.lock() {
                    p.1 += 1;
                    if r > p.0 {
                        p.0 = r;
                    }
                }
                std::thread::sleep(Duration::from_millis(SAMPLE_MS));
            }
        })
    };
    let deadline = Instant::now() + timeout;
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => panic!("wait for the measuring wrapper: {e}"),
        }
        if Instant::now() > deadline && !killed {
            // SAFETY: killpg(2) on the process group we created for this run.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
            killed = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let (mut tree_peak_mib, samples) = *peak.lock().expect("peak lock");
    if samples < 3 {
        tree_peak_mib = f64::NAN; // too short a run to sample
    }
    let stats: Value = std::fs::read_to_string(&stats_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let f = |k: &str| stats[k].as_f64().unwrap_or(f64::NAN);
    let exit = stats["exit"].as_i64();
    RunStats {
        wall: Duration::from_secs_f64(if f("wall_s").is_nan() {
            timeout.as_secs_f64()
        } else {
            f("wall_s")
        }),
        cpu: f("utime_s") + f("stime_s"),
        maxrss_mib: f("maxrss_kib") / 1024.0,
        tree_peak_mib,
        samples,
        ok: !killed && status.success() && exit == Some(0),
        status: if killed {
            format!("killed after {timeout:?}")
        } else {
            format!("exit {:?} ({status})", exit)
        },
    }
}

/// PATH of both headless agents: the system directories only, so that neither
/// goes through this machine's pyenv shims (hermes probes `python`/`pip` at start).
const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment both headless agents run in: nothing inherited that names
/// a model or a key, HOME an empty directory (so the machine's shell rc files
/// don't run), PATH the system directories, the scripted server never reached
/// through a proxy.
fn clean_env(cmd: &mut std::process::Command, home: &Path) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("TETHER_")
            || k.starts_with("OPENAI_")
            || k.starts_with("HERMES_")
            || k.starts_with("XDG_")
            || k.ends_with("_API_KEY")
            || k.to_ascii_lowercase().ends_with("_proxy")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("HOME", home)
        .env("PATH", CLEAN_PATH)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
}

struct Agent {
    name: &'static str,
    /// Builds the command for a workspace; `home` is this agent's own home.
    build: Box<dyn Fn(&Path) -> std::process::Command + Send + Sync>,
}

async fn compare(a: &Args, sz: Sizes, rep: &Report) {
    let n = sz.compare_calls;
    let target = Arc::new(AtomicU64::new(0));
    let aux = Arc::new(AtomicU64::new(0));
    let model = ModelServer::start_with(session_replies(target.clone(), aux.clone())).await;
    let base = tempfile::Builder::new()
        .prefix("tether-bench-compare-")
        .tempdir()
        .expect("tmp");
    let logs = a.out.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");

    // tether exec: config file raises max_iterations above the session's length.
    let t_home = base.path().join("tether-home");
    let t_cfg = t_home.join(".config/tether");
    std::fs::create_dir_all(&t_cfg).expect("tether config dir");
    std::fs::write(
        t_cfg.join("config.toml"),
        format!("max_iterations = {}\n", n + 50),
    )
    .expect("config");
    let t_data = base.path().join("tether-data");
    let (bin, url) = (a.bin.clone(), model.base_url());
    let home = t_home.clone();
    let mut agents = vec![Agent {
        name: "tether",
        build: Box::new(move |ws: &Path| {
            let mut c = std::process::Command::new(&bin);
            clean_env(&mut c, &home);
            c.args(["exec", "Run the scripted session."])
                .current_dir(ws)
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_DATA_HOME", home.join(".local/share"))
                .env("TETHER_MODEL", "scripted")
                .env("TETHER_BASE_URL", &url)
                .env("TETHER_DATA_DIR", &t_data);
            c
        }),
    }];
    match &a.hermes {
        Some(hermes) => {
            let h_home = base.path().join("hermes-home");
            let hh = h_home.join(".hermes");
            std::fs::create_dir_all(&hh).expect("hermes home");
            std::fs::write(hh.join("config.yaml"), hermes_config(&model.base_url(), n))
                .expect("hermes config");
            // A fresh update-check cache: `hermes chat` checks PyPI at most every 6 h.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            std::fs::write(
                hh.join(".update_check"),
                json!({"ts": now, "behind": 0, "rev": null, "ver": HERMES_VERSION}).to_string(),
            )
            .expect("hermes update-check cache");
            let hermes = hermes.clone();
            let max_turns = (n + 50).to_string();
            agents.push(Agent {
                name: "hermes",
                build: Box::new(move |ws: &Path| {
                    let mut c = std::process::Command::new(&hermes);
                    clean_env(&mut c, &h_home);
                    c.args([
                        "chat",
                        "-q",
                        "Run the scripted session.",
                        "-Q",
                        "--yolo",
                        "--toolsets",
                        HERMES_TOOLSETS,
                    ])
                    .args(["--max-turns", &max_turns])
                    .current_dir(ws)
                    .env("HERMES_HOME", &hh)
                    .env("OPENAI_API_KEY", "sk-bench-not-a-key");
                    c
                }),
            });
        }
        None => rep.add(
            "compare",
            "hermes-agent: skipped",
            f64::NAN,
            "",
            "not installed (bench/run.sh installs it into bench/.venv; or pass --hermes PATH)",
        ),
    }

    let mut results: HashMap<&'static str, (RunStats, RunStats, usize, usize, u64)> =
        HashMap::new();
    for ag in &agents {
        // Warm-up (not measured): first-run set-up, page cache.
        let ws = base.path().join(format!("{}-warm", ag.name));
        make_workspace(&ws);
        target.store(0, Ordering::SeqCst);
        let w = run_measured(
            (ag.build)(&ws),
            &logs.join(format!("compare-{}-warmup", ag.name)),
            LONG,
        )
        .await;
        assert!(
            w.ok,
            "{} warm-up failed ({}); see {}",
            ag.name,
            w.status,
            logs.display()
        );

        // Baseline: start-up, one model reply, exit.
        let ws0 = base.path().join(format!("{}-0", ag.name));
        make_workspace(&ws0);
        let s0 = run_measured(
            (ag.build)(&ws0),
            &logs.join(format!("compare-{}-0", ag.name)),
            LONG,
        )
        .await;
        assert!(s0.ok, "{} baseline failed ({})", ag.name, s0.status);

        // The session.
        let wsn = base.path().join(format!("{}-{n}", ag.name));
        make_workspace(&wsn);
        target.store(n as u64, Ordering::SeqCst);
        let before = model.requests();
        let aux0 = aux.load(Ordering::SeqCst);
        let sn = run_measured(
            (ag.build)(&wsn),
            &logs.join(format!("compare-{}-{n}", ag.name)),
            LONG,
        )
        .await;
        let after = model.requests();
        let new = &after[before.len()..];
        let posts = new.iter().filter(|r| r.method == "POST").count();
        let body_bytes: usize = new.iter().map(|r| r.raw_body.len()).sum();
        let notes = std::fs::read_to_string(wsn.join("notes.txt")).unwrap_or_default();
        let ok = sn.ok && notes.trim() == format!("value {}", edits_in(n));
        assert!(
            ok,
            "{} session failed ({}; notes.txt = {notes:?}); see {}",
            ag.name,
            sn.status,
            logs.display()
        );
        // Last request: how many tool results the agent sent back.
        let last_tools = new
            .iter()
            .rev()
            .find(|r| r.method == "POST")
            .map(|r| tool_count(&r.body))
            .unwrap_or(0);
        assert_eq!(
            last_tools, n,
            "{}: all {n} tool results reached the model",
            ag.name
        );
        let gets = new.len() - posts;
        let extra = aux.load(Ordering::SeqCst) - aux0;
        rep.add(
            "compare",
            &format!("{}: {n}-call session, spawn → exit", ag.name),
            sn.wall.as_secs_f64(),
            "s",
            &format!(
                "CPU {:.2} s; peak RSS {:.1} MiB (process), {} (tree PSS, {} samples /{SAMPLE_MS} ms); {posts} chat requests ({extra} without tools), {gets} other requests, {:.1} MB sent to the model",
                sn.cpu, sn.maxrss_mib, mib(sn.tree_peak_mib), sn.samples, body_bytes as f64 / 1e6
            ),
        );
        rep.add(
            "compare",
            &format!("{}: 0-call baseline (start, one reply, exit)", ag.name),
            s0.wall.as_secs_f64(),
            "s",
            &format!(
                "CPU {:.3} s; peak RSS {:.1} MiB (process)",
                s0.cpu, s0.maxrss_mib
            ),
        );
        rep.add(
            "compare",
            &format!("{}: marginal wall per tool round trip", ag.name),
            (sn.wall.as_secs_f64() - s0.wall.as_secs_f64()) * 1000.0 / n as f64,
            "ms",
            &format!(
                "(session − baseline) / {n}; CPU {:.2} ms per round trip",
                (sn.cpu - s0.cpu) * 1000.0 / n as f64
            ),
        );
        results.insert(ag.name, (s0, sn, posts, body_bytes, extra));
    }
    if let (Some(t), Some(h)) = (results.get("tether"), results.get("hermes")) {
        let (t0, tn) = (&t.0, &t.1);
        let (h0, hn) = (&h.0, &h.1);
        rep.add(
            "compare",
            &format!("hermes / tether, wall of the {n}-call session"),
            hn.wall.as_secs_f64() / tn.wall.as_secs_f64(),
            "x",
            &format!(
                "{:.2} s / {:.2} s",
                hn.wall.as_secs_f64(),
                tn.wall.as_secs_f64()
            ),
        );
        rep.add(
            "compare",
            &format!("hermes / tether, CPU of the {n}-call session"),
            hn.cpu / tn.cpu,
            "x",
            &format!("{:.2} s / {:.2} s", hn.cpu, tn.cpu),
        );
        rep.add(
            "compare",
            &format!("hermes / tether, peak RSS of the {n}-call session"),
            hn.maxrss_mib / tn.maxrss_mib,
            "x",
            &format!(
                "{:.1} MiB / {:.1} MiB (process, ru_maxrss); tree PSS {} / {}",
                hn.maxrss_mib,
                tn.maxrss_mib,
                mib(hn.tree_peak_mib),
                mib(tn.tree_peak_mib)
            ),
        );
        let per = |s0: &RunStats, sn: &RunStats| {
            (sn.wall.as_secs_f64() - s0.wall.as_secs_f64()) / n as f64
        };
        rep.add(
            "compare",
            "hermes / tether, marginal wall per tool round trip",
            per(h0, hn) / per(t0, tn),
            "x",
            &format!(
                "{:.2} ms / {:.2} ms",
                per(h0, hn) * 1000.0,
                per(t0, tn) * 1000.0
            ),
        );
    }
}

/// Toolsets given to `hermes chat --toolsets`: the closest match to Tether's tools.
const HERMES_TOOLSETS: &str = "terminal,file,todo,delegation";

/// The hermes-agent release this comparison was written against (bench/run.sh
/// installs it).
const HERMES_VERSION: &str = "0.19.0";

/// hermes-agent's config.yaml for the comparison.
fn hermes_config(base_url: &str, n: usize) -> String {
    format!(
        "# Written by examples/bench_agent.rs for the side-by-side benchmark.\n\
         model:\n  provider: custom\n  base_url: {base_url}\n  default: scripted\n  \
         # Given, so that no context-length probe runs.\n  context_length: 200000\n\
         agent:\n  # Default 90 would stop the {n}-call session early (Tether's max_iterations is raised too).\n  max_turns: {}\n\
         compression:\n  # Tether does not compress; nothing may call the model behind the session's back.\n  enabled: false\n\
         security:\n  # Otherwise hermes tries to download the tirith scanner from GitHub.\n  tirith_enabled: false\n",
        n + 50
    )
}

async fn parallel(a: &Args, sz: Sizes, rep: &Report) {
    let model = ModelServer::start_with(|body| {
        if tool_count(body) == 0 {
            Reply::ToolCalls(
                (0..8)
                    .map(|i| {
                        call(
                            &format!("s{i}"),
                            "run_command",
                            json!({"command": "sleep 0.2"}),
                        )
                    })
                    .collect(),
            )
        } else {
            Reply::Text("all eight finished".into())
        }
    })
    .await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let (ed, _) = Editor::start(editor_cfg(
        &a.bin,
        ws.path(),
        init_opts(&model, data.path(), json!({})),
    ))
    .await;
    let mut walls = Vec::new();
    let mut slowest = Vec::new();
    for _ in 0..sz.parallel_reps {
        let r = prompt(&ed, None, "Run eight sleeps.").await;
        let turn = r["turnId"].clone();
        let ns = ed.notifications();
        let at = |id: &str, status: &str| {
            ns.iter()
                .find(|n| {
                    n.method == "tether/update"
                        && n.params["turnId"] == turn
                        && n.params["kind"] == "toolCall"
                        && n.params["toolCallId"] == id
                        && n.params["status"] == status
                })
                .map(|n| n.at)
                .unwrap_or_else(|| panic!("no {status} update for {id}\n{}", ed.dump()))
        };
        let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let start = ids.iter().map(|i| at(i, "running")).min().expect("starts");
        let end = ids.iter().map(|i| at(i, "completed")).max().expect("ends");
        let slow = ids
            .iter()
            .map(|i| at(i, "completed") - at(i, "running"))
            .max()
            .expect("calls");
        walls.push(ms(end - start));
        slowest.push(ms(slow));
    }
    ed.shutdown().await;
    let w = sorted(walls);
    let s = sorted(slowest);
    let (wm, sm) = (percentile(&w, 0.5), percentile(&s, 0.5));
    rep.add(
        "parallel",
        "8 × `sleep 0.2` in one response: batch wall / slowest call",
        wm / sm,
        "x",
        &format!(
            "batch wall {wm:.0} ms (first running → last completed), slowest call {sm:.0} ms; wall / 200 ms = {:.2}; median of {}",
            wm / 200.0,
            w.len()
        ),
    );
}

/// Read / search / `true` in turn: calls that do not interfere, so that 16
/// subagents can make them at once.
fn fanout_call(i: usize) -> (String, Value) {
    let k = i % 50;
    match i % 3 {
        0 => (
            "read_file".into(),
            json!({"path": format!("src/f{k:02}.rs")}),
        ),
        1 => (
            "search".into(),
            json!({"pattern": format!("fn f{k:02}_7\\b"), "path": "src"}),
        ),
        _ => ("run_command".into(), json!({"command": "true"})),
    }
}

async fn subagents(a: &Args, sz: Sizes, rep: &Report) {
    let (kids, per) = (sz.children, sz.calls_per_child);
    let total = kids * per;
    let model = ModelServer::start_with(move |body| {
        let done = tool_count(body);
        if system_text(body).contains("You are a subagent") {
            // "task K: …"
            let k: usize = first_user_line(body)
                .strip_prefix("task ")
                .and_then(|s| s.split(':').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return if done < per {
                let (name, args) = fanout_call(k * per + done);
                Reply::ToolCalls(vec![call(&format!("k{k}_{done}"), &name, args)])
            } else {
                Reply::Text(format!("task {k} done after {done} calls"))
            };
        }
        let user = first_user_line(body);
        if user.starts_with("Fan out") {
            if done == 0 {
                let tasks: Vec<Value> = (0..kids)
                    .map(|k| json!({"goal": format!("task {k}: make your {per} calls")}))
                    .collect();
                Reply::ToolCalls(vec![call("fan", "delegate", json!({"tasks": tasks}))])
            } else {
                Reply::Text("all subagents reported".into())
            }
        } else if done < total {
            let (name, args) = fanout_call(done);
            Reply::ToolCalls(vec![call(&format!("q{done}"), &name, args)])
        } else {
            Reply::Text(format!("made {done} calls"))
        }
    })
    .await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let opts = init_opts(
        &model,
        data.path(),
        json!({
            "maxIterations": total + 10,
            "delegation": {"maxChildren": kids, "maxDepth": 1, "maxIterations": per + 10}
        }),
    );
    let (ed, _) = Editor::start(editor_cfg(&a.bin, ws.path(), opts)).await;
    let pid = ed.pid();

    let (c0, k0) = proc_cpu(pid);
    let t0 = Instant::now();
    prompt(&ed, None, "Fan out: one subagent per task.").await;
    let fan = t0.elapsed();
    let (c1, k1) = proc_cpu(pid);
    let child_calls = ed
        .updates()
        .iter()
        .filter(|u| {
            u["kind"] == "toolCall"
                && u["status"] == "completed"
                && u.get("agent").is_some_and(|a| !a.is_null())
        })
        .count();
    let kids_done = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "subagent" && u["status"] == "completed")
        .count();

    let t1 = Instant::now();
    prompt(&ed, None, "Sequential: make every call yourself.").await;
    let seq = t1.elapsed();
    let (c2, k2) = proc_cpu(pid);
    let hwm = status_mib(pid, "VmHWM");
    ed.shutdown().await;
    assert_eq!(child_calls, total, "every subagent call completed");
    rep.add(
        "subagents",
        &format!("{kids} subagents × {per} calls: sequential wall / fan-out wall"),
        seq.as_secs_f64() / fan.as_secs_f64(),
        "x",
        &format!(
            "fan-out {:.2} s ({kids_done} subagents completed, CPU {:.2} s + {:.2} s children); the same {total} calls by one agent {:.2} s (CPU {:.2} s + {:.2} s); peak RSS {hwm:.1} MiB",
            fan.as_secs_f64(),
            c1 - c0,
            k1 - k0,
            seq.as_secs_f64(),
            c2 - c1,
            k2 - k1
        ),
    );
    rep.add(
        "subagents",
        &format!("{kids} subagents × {per} calls: fan-out wall"),
        fan.as_secs_f64(),
        "s",
        &format!("maxChildren {kids}; sequential: {:.2} s", seq.as_secs_f64()),
    );
}

async fn approvals(a: &Args, sz: Sizes, rep: &Report) {
    let n = sz.approvals;
    let model = ModelServer::start_with(move |body| {
        let done = tool_count(body);
        if done < n {
            Reply::ToolCalls(vec![call(
                &format!("a{done}"),
                "run_command",
                json!({"command": format!("rm -rf ./scratch-{done}")}),
            )])
        } else {
            Reply::Text("all approved".into())
        }
    })
    .await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let opts = init_opts(
        &model,
        data.path(),
        json!({"maxIterations": n + 10, "approval": {"mode": "ask"}}),
    );
    // `tether::approval=debug`: if the server logs its own measurement
    // ("approval round trip … approval_id=… round_trip_us=…"), it is used too.
    let cfg = editor_cfg(&a.bin, ws.path(), opts).env("TETHER_LOG", "info,tether::approval=debug");
    let (ed, _) = Editor::start(cfg).await;
    ed.set_show_message_policy(ShowMessagePolicy::Defer);
    // The person: reads each dialog for THINK, then answers "Allow once".
    let person = async {
        for _ in 0..n {
            let r = ed
                .next_server_request("window/showMessageRequest", LONG)
                .await;
            tokio::time::sleep(THINK).await;
            let item = choose_action(&r.params, "Allow once").expect("an `Allow once` action");
            ed.reply(r.id, Ok(item)).await;
        }
    };
    tokio::join!(
        prompt(&ed, None, "Clean up the scratch directories."),
        person
    );
    let reqs: Vec<_> = ed
        .server_requests()
        .into_iter()
        .filter(|r| r.method == "window/showMessageRequest")
        .collect();
    let ns = ed.notifications();
    let stderr = ed.stderr_text();
    ed.shutdown().await;
    assert_eq!(
        reqs.len(),
        n,
        "one dialog per command (is `rm -rf` still classified `ask`?)"
    );
    // Server-side figures, if the server logs them: approval id → µs.
    let server: HashMap<String, f64> = stderr
        .lines()
        .filter(|l| l.contains("approval round trip"))
        .filter_map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .map(|v| v.trim_matches('"').to_string())
            };
            Some((
                field("approval_id=")?,
                field("round_trip_us=")?.parse().ok()?,
            ))
        })
        .collect();
    let mut rtt = Vec::new();
    let mut think = Vec::new();
    let mut inside = Vec::new();
    for r in &reqs {
        let id = r.params["actions"][0]["approvalId"].clone();
        let allowed = ns
            .iter()
            .find(|x| {
                x.method == "tether/update"
                    && x.params["kind"] == "approval"
                    && x.params["approvalId"] == id
                    && x.params["status"] == "allowed"
            })
            .map(|x| x.at)
            .unwrap_or_else(|| panic!("no `allowed` update for {id}"));
        let answered = r.answered_at.expect("answered");
        let t = answered - r.at;
        think.push(ms(t));
        rtt.push(((allowed - r.at).as_secs_f64() - t.as_secs_f64()) * 1e6);
        if let Some(us) = id.as_str().and_then(|i| server.get(i)) {
            inside.push(us - t.as_secs_f64() * 1e6);
        }
    }
    let rtt = sorted(rtt);
    let think = sorted(think);
    rep.add(
        "approvals",
        "approval round trip minus think time, at the client (p50)",
        percentile(&rtt, 0.5),
        "µs",
        &format!(
            "p95 {:.0} µs, max {:.0} µs over {n} dialogs: dialog request received → `approval allowed` update received, minus think time (reply sent − request received: p50 {:.1} ms, a deliberate {} ms pause); an upper bound of the server's part, as it includes two pipe hops and the emulator",
            percentile(&rtt, 0.95),
            rtt[rtt.len() - 1],
            percentile(&think, 0.5),
            THINK.as_millis()
        ),
    );
    if inside.len() == n {
        let inside = sorted(inside);
        rep.add(
            "approvals",
            "approval round trip minus think time, inside the server (p50)",
            percentile(&inside, 0.5),
            "µs",
            &format!(
                "p95 {:.0} µs; the server's `approval round trip` log (request sent → decision applied) minus the client's think time",
                percentile(&inside, 0.95)
            ),
        );
    } else {
        rep.add(
            "approvals",
            "approval round trip inside the server",
            f64::NAN,
            "µs",
            &format!(
                "not logged by this server ({} of {n} dialogs had an `approval round trip` line at tether::approval=debug)",
                inside.len()
            ),
        );
    }
}

/// A recorded-shape stream of `n` chunks (text deltas, then the finish chunk)
/// through the real server: parsed, assembled and forwarded to the editor as
/// `tether/update` text events.
async fn stream(a: &Args, sz: Sizes, rep: &Report) {
    let n = sz.stream_chunks;
    let words = [
        "The",
        " function",
        " reads",
        " the",
        " file",
        ",",
        " splits",
        " it",
        " into",
        " lines",
        " and",
        " returns",
        " the",
        " count",
        ". ",
        "Ünïcödé",
        " 😀",
        "\n",
    ];
    let mut text_len = 0usize;
    let mut events = Vec::with_capacity(n);
    for i in 0..n - 1 {
        // Each line numbered: a reply that repeats itself word for word is
        // stopped by Tether's repeat guard, which is not what this measures.
        let w = match words[i % words.len()] {
            "\n" => format!(" ({})\n", i / words.len()),
            w => w.to_string(),
        };
        let w = w.as_str();
        text_len += w.len();
        let delta = if i == 0 {
            json!({"role": "assistant", "content": w})
        } else {
            json!({"content": w})
        };
        events.push(
            json!({"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
                   "created": 1_741_569_952, "model": "gpt-4.1-2025-04-14",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
            .to_string(),
        );
    }
    events.push(
        json!({"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
               "created": 1_741_569_952, "model": "gpt-4.1-2025-04-14",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        .to_string(),
    );
    let events = Arc::new(events);
    let ev = events.clone();
    let model = ModelServer::start_with(move |_| Reply::RawSse {
        events: (*ev).clone(),
        done: true,
    })
    .await;
    let ws = tempfile::tempdir().expect("ws");
    make_workspace(ws.path());
    let data = tempfile::tempdir().expect("data");
    let (ed, _) = Editor::start(editor_cfg(
        &a.bin,
        ws.path(),
        init_opts(&model, data.path(), json!({})),
    ))
    .await;
    let pid = ed.pid();
    let mut rates = Vec::new();
    let mut cpu_pct = Vec::new();
    let mut forwarded = 0usize;
    for _ in 0..sz.stream_reps {
        let c0 = threads_cpu(pid);
        let t0 = Instant::now();
        let r = prompt(&ed, None, "Stream a long answer.").await;
        let wall = t0.elapsed();
        let c1 = threads_cpu(pid);
        let turn = r["turnId"].clone();
        let got: usize = ed
            .updates()
            .iter()
            .filter(|u| u["turnId"] == turn && u["kind"] == "text")
            .map(|u| u["delta"].as_str().map_or(0, str::len))
            .sum();
        assert_eq!(got, text_len, "every streamed byte reached the editor");
        forwarded = ed
            .updates()
            .iter()
            .filter(|u| u["turnId"] == turn && u["kind"] == "text")
            .count();
        rates.push(n as f64 / wall.as_secs_f64());
        cpu_pct.push((c1 - c0) / wall.as_secs_f64() * 100.0);
    }
    ed.shutdown().await;
    let r = sorted(rates);
    let c = sorted(cpu_pct);
    rep.add(
        "stream",
        &format!("{n}-chunk stream parsed and forwarded to the editor (median of {})", r.len()),
        percentile(&r, 0.5),
        "chunks/s",
        &format!(
            "prompt → result through the LSP; tether CPU {:.0} % of the wall time (median, from its threads' schedstat; 100 % = one core); {forwarded} text updates carried the {text_len} bytes",
            percentile(&c, 0.5)
        ),
    );
}

// ---------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--measure-child")
        && argv.get(3).map(String::as_str) == Some("--")
    {
        return measure_child(&argv[2], &argv[4..]);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(real_main())
}

async fn real_main() -> std::process::ExitCode {
    let a = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("bench_agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    std::fs::create_dir_all(&a.out).expect("out dir");
    let jsonl = std::fs::File::create(a.out.join("agent.jsonl")).expect("agent.jsonl");
    let rep = Arc::new(Report {
        recs: Mutex::new(Vec::new()),
        jsonl: Mutex::new(jsonl),
        smoke: a.smoke,
    });
    let sz = if a.smoke { SMOKE } else { FULL };
    eprintln!(
        "bench_agent: {} sizes, tether = {}, hermes = {}",
        if a.smoke { "smoke" } else { "full" },
        a.bin.display(),
        a.hermes
            .as_ref()
            .map_or("skipped".into(), |h| h.display().to_string())
    );
    let mut failed = Vec::new();
    for name in SCENARIOS.iter().filter(|s| a.only.iter().any(|o| o == *s)) {
        let (a2, rep2) = (a.clone(), rep.clone());
        let t = Instant::now();
        eprintln!("== {name} (load {:?})", loadavg());
        let h = tokio::spawn(async move {
            match *name {
                "startup" => startup(&a2, sz, &rep2).await,
                "session" => session(&a2, sz, &rep2).await,
                "tools" => tools(&a2, sz, &rep2).await,
                "compare" => compare(&a2, sz, &rep2).await,
                "parallel" => parallel(&a2, sz, &rep2).await,
                "subagents" => subagents(&a2, sz, &rep2).await,
                "approvals" => approvals(&a2, sz, &rep2).await,
                "stream" => stream(&a2, sz, &rep2).await,
                _ => unreachable!(),
            }
        });
        if let Err(e) = h.await {
            let msg = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
                Err(e) => e.to_string(),
            };
            eprintln!("bench_agent: scenario {name} FAILED: {msg}");
            failed.push(*name);
        }
        eprintln!("   {name} took {:.1} s", t.elapsed().as_secs_f64());
    }
    let recs = rep.recs.lock().expect("recs").clone();
    let md = markdown(&recs);
    std::fs::write(a.out.join("agent.md"), &md).expect("agent.md");
    println!("{md}");
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("bench_agent: failed scenarios: {failed:?}");
        std::process::ExitCode::FAILURE
    }
}
