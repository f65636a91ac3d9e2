//! Session store benchmark (issue 6, BENCHMARKS.md):
//!
//! - appends/s through `Store::write` (each append waits for its commit)
//!   with 1 writer and with 16 concurrent writers;
//! - bulk load of `--messages` generated messages (default 1,000,000) through
//!   the same writer thread (`Store::submit` + `Store::flush`);
//! - database size per 1,000 messages;
//! - `tether/sessions {query}` latency (FTS5, bm25, snippet; `Store::list_sessions`)
//!   p50/p95 over the loaded messages, by how common the searched word is.
//!
//! ```text
//! cargo run --release --example store_bench -- [--messages N] [--appends N]
//!     [--queries N] [--dir PATH]
//! ```
//!
//! Text is generated deterministically: words from a 20,000-word vocabulary
//! with a Zipf distribution (like natural text), messages of 10–160 words
//! by role (user short, assistant medium, tool output long).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tether::protocol::Role;
use tether::store::{now_ms, Store, StoredMessage, Write};

const VOCAB: usize = 20_000;
const MESSAGES_PER_SESSION: u64 = 100;

struct Args {
    messages: u64,
    appends: u64,
    queries: usize,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        messages: 1_000_000,
        appends: 20_000,
        queries: 200,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => a.messages = value()?.parse().map_err(|e| format!("{e}"))?,
            "--appends" => a.appends = value()?.parse().map_err(|e| format!("{e}"))?,
            "--queries" => a.queries = value()?.parse().map_err(|e| format!("{e}"))?,
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            other => {
                return Err(format!(
                    "unknown argument {other}; use --messages N --appends N --queries N --dir PATH"
                ))
            }
        }
    }
    Ok(a)
}

/// xorshift64* — deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The word of Zipf rank `r` (0 = most common): four syllables, unique.
fn word(r: usize) -> String {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ru", "te", "sa", "po", "ne", "di", "fu", "ga", "hi", "jo", "ve", "zu",
        "bo",
    ];
    (0..4).map(|k| SYL[(r >> (4 * (3 - k))) & 15]).collect()
}

struct Text {
    words: Vec<String>,
    /// Cumulative Zipf weights (s = 1).
    cdf: Vec<f64>,
}

impl Text {
    fn new() -> Text {
        let mut cdf = Vec::with_capacity(VOCAB);
        let mut sum = 0.0;
        for r in 0..VOCAB {
            sum += 1.0 / (r as f64 + 1.0);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Text {
            words: (0..VOCAB).map(word).collect(),
            cdf,
        }
    }

    fn sentence(&self, rng: &mut Rng, n: u64) -> String {
        let mut s = String::with_capacity(n as usize * 9);
        for i in 0..n {
            let u = rng.unit();
            let r = self.cdf.partition_point(|&c| c < u).min(VOCAB - 1);
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&self.words[r]);
        }
        s
    }

    /// Message `i` of a session: user, assistant (with a tool call), tool, …
    fn message(&self, rng: &mut Rng, i: u64) -> StoredMessage {
        let (role, words) = match i % 3 {
            0 => (Role::User, 10 + rng.below(30)),
            1 => (Role::Assistant, 20 + rng.below(80)),
            _ => (Role::Tool, 40 + rng.below(120)),
        };
        let tool = ["read_file", "run_command", "search", "edit_file"][(i % 4) as usize];
        StoredMessage {
            role,
            content: self.sentence(rng, words),
            tool_calls: (role == Role::Assistant).then(|| {
                json!([{"id": format!("c{i}"), "type": "function",
                        "function": {"name": tool, "arguments": "{\"path\":\"src/lib.rs\"}"}}])
            }),
            tool_call_id: (role == Role::Tool).then(|| format!("c{}", i - 1)),
            created_ms: now_ms(),
        }
    }
}

fn create(id: &str) -> Write {
    Write::CreateSession {
        id: id.into(),
        parent_id: None,
        title: String::new(),
        workspace: "/bench".into(),
        model: "bench".into(),
    }
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn db_bytes(dir: &Path) -> u64 {
    ["tether.db", "tether.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// `writers` tasks append `total` messages between them, each waiting for
/// its commit. Returns appends per second.
async fn appends(base: &Path, text: &Text, writers: u64, total: u64) -> Result<f64, String> {
    let dir = fresh_dir(base, &format!("appends-{writers}"));
    let store = Store::open(&dir);
    if let Some(w) = store.take_warning() {
        return Err(w);
    }
    let per = total / writers;
    // Messages are generated before the clock starts.
    let mut work = Vec::new();
    for w in 0..writers {
        let sid = format!("w{w}");
        store.write(create(&sid)).await.map_err(|e| e.to_string())?;
        let mut rng = Rng(0x1234_5678 + w);
        let msgs: Vec<StoredMessage> = (0..per).map(|i| text.message(&mut rng, i)).collect();
        work.push((sid, msgs));
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (sid, msgs) in work {
        let store = store.clone();
        tasks.spawn(async move {
            for m in msgs {
                store
                    .write(Write::AppendMessage {
                        session_id: sid.clone(),
                        message: m,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((per * writers) as f64 / secs)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn run(args: Args) -> Result<(), String> {
    let tmp;
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("tether-store-bench-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let text = Text::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cores} cores, {cpu}; SQLite {}",
        rusqlite::version()
    );
    println!("data dir: {}", base.display());

    // 1. Appends, each waiting for its commit.
    for writers in [1, 16] {
        let rate = appends(&base, &text, writers, args.appends).await?;
        println!(
            "appends/s, {writers:>2} writer(s), {} appends: {rate:.0}",
            args.appends / writers * writers
        );
    }

    // 2. Bulk load through the writer thread.
    let dir = fresh_dir(&base, "fts");
    let store = Store::open(&dir);
    if let Some(w) = store.take_warning() {
        return Err(w);
    }
    let mut rng = Rng(0xDEAD_BEEF);
    let mut content_bytes = 0u64;
    let start = Instant::now();
    let sessions = args.messages.div_ceil(MESSAGES_PER_SESSION);
    let mut written = 0u64;
    for s in 0..sessions {
        let sid = format!("s{s:07}");
        store.submit(create(&sid));
        for i in 0..MESSAGES_PER_SESSION.min(args.messages - written) {
            let m = text.message(&mut rng, i);
            content_bytes += m.content.len() as u64;
            store.submit(Write::AppendMessage {
                session_id: sid.clone(),
                message: m,
            });
            written += 1;
        }
        if s % 500 == 499 {
            store.flush().await.map_err(|e| e.to_string())?;
        }
    }
    store.flush().await.map_err(|e| e.to_string())?;
    let load = start.elapsed();
    println!(
        "bulk load: {written} messages in {sessions} sessions in {:.1} s ({:.0} messages/s), \
         average message {} bytes",
        load.as_secs_f64(),
        written as f64 / load.as_secs_f64(),
        content_bytes / written.max(1)
    );
    drop(store);

    // 3. Size, with the WAL checkpointed into the main file.
    {
        let c = rusqlite::Connection::open(dir.join("tether.db")).map_err(|e| e.to_string())?;
        c.busy_timeout(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| e.to_string())?;
    }
    let bytes = db_bytes(&dir);
    let store = Store::open(&dir);
    println!(
        "database: {:.1} MiB for {written} messages = {:.1} KiB per 1,000 messages \
         (message text alone: {:.1} KiB per 1,000)",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / (written as f64 / 1000.0),
        content_bytes as f64 / 1024.0 / (written as f64 / 1000.0)
    );

    // 4. Search latency by how common the word is.
    let bands: [(&str, usize, usize); 4] = [
        ("very common (Zipf rank 10-100)", 10, 100),
        ("common (rank 100-1,000)", 100, 1_000),
        ("uncommon (rank 1,000-5,000)", 1_000, 5_000),
        ("rare (rank 5,000-20,000)", 5_000, VOCAB),
    ];
    // Warm the cache and the reader connections.
    for r in 0..20 {
        let _ = store.list_sessions(Some(word(100 + r)), 50).await;
    }
    let mut all = Vec::new();
    let per_band = (args.queries / (bands.len() + 1)).max(1);
    let mut qrng = Rng(0xC0FF_EE00);
    for (name, lo, hi) in bands {
        let mut times = Vec::new();
        let mut hits = 0usize;
        for _ in 0..per_band {
            let q = word(lo + qrng.below((hi - lo) as u64) as usize);
            let t = Instant::now();
            let found = store
                .list_sessions(Some(q), 50)
                .await
                .map_err(|e| e.to_string())?;
            times.push(t.elapsed());
            hits += found.len();
        }
        times.sort();
        println!(
            "search {name}: p50 {} p95 {} ({} queries, {:.1} sessions returned on average)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            times.len(),
            hits as f64 / times.len() as f64
        );
        all.extend(times);
    }
    // Two-word queries (both must occur), from the common and uncommon bands.
    let mut times = Vec::new();
    for _ in 0..per_band {
        let q = format!(
            "{} {}",
            word(100 + qrng.below(900) as usize),
            word(1_000 + qrng.below(4_000) as usize)
        );
        let t = Instant::now();
        store
            .list_sessions(Some(q), 50)
            .await
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "search two words (common + uncommon): p50 {} p95 {} ({} queries)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        times.len()
    );
    all.extend(times);
    all.sort();
    println!(
        "search overall over {written} messages: p50 {} p95 {} ({} queries, limit 50 sessions)",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.95)),
        all.len()
    );
    // The list without a query, for comparison.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        store
            .list_sessions(None, 50)
            .await
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "list 50 newest sessions: p50 {} p95 {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95))
    );
    if args.dir.is_none() {
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("store_bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("store_bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
