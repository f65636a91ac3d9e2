//! What `tether sessions delete` costs on a large history: the delete with
//! `secure_delete`, the full-text index merge (`optimize`) that drops the
//! deleted terms, and the WAL checkpoint (TRUNCATE) before it is acknowledged.
//!
//! `cargo run --release --example delete_bench [-- --messages 100000]`
//!
//! Fills a fresh store with `--messages` messages (200 per session, ~60
//! words each, a varied vocabulary), then deletes three sessions one by one
//! and prints the wall time of each `Store::delete_session`.

use std::time::Instant;

use tether::protocol::Role;
use tether::store::{now_ms, Store, StoredMessage, Write};

fn main() {
    let mut n = 100_000usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--messages") {
        n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(n);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path());
        let per = 200;
        let mut seed = 1u64;
        let mut word = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("w{}", seed % 50_000)
        };
        let t = Instant::now();
        for i in 0..n {
            let sid = format!("s{}", i / per);
            if i % per == 0 {
                store.submit(Write::CreateSession {
                    id: sid.clone(),
                    parent_id: None,
                    title: String::new(),
                    workspace: "/ws".into(),
                    model: "m".into(),
                });
            }
            let content: Vec<String> = (0..60).map(|_| word()).collect();
            store.submit(Write::AppendMessage {
                session_id: sid,
                message: StoredMessage {
                    role: if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    content: content.join(" "),
                    tool_calls: None,
                    tool_call_id: None,
                    created_ms: now_ms(),
                },
            });
        }
        store.flush().await.expect("flush");
        let size = std::fs::metadata(dir.path().join("tether.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "filled {n} messages in {:.1} s; tether.db {:.1} MiB",
            t.elapsed().as_secs_f64(),
            size as f64 / (1024.0 * 1024.0)
        );
        for k in [0, n / per / 2, n / per - 1] {
            let t = Instant::now();
            let gone = store.delete_session(format!("s{k}")).await.expect("delete");
            println!(
                "delete session s{k} ({per} messages, {gone} session): {:.0} ms",
                t.elapsed().as_secs_f64() * 1000.0
            );
        }
    });
}
