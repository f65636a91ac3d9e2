//! Cost of secret redaction per MB of tool output and of streamed model text.
//!
//! `cargo run --release --example redact_bench [-- --mb 4]`
//!
//! Every tool result, update and stored message goes through
//! `tools::Redactor::redact`; streamed model text through a
//! `StreamRedactor`. Inputs (each generated to `--mb` MiB, deterministic):
//! - `build log`: compiler/test-runner output (few rule keywords);
//! - `source code`: this repository's own `src/**/*.rs`, repeated — code about
//!   secrets, so keywords (`token`, `secret`, `key`, `ey`) are everywhere;
//! - `JSON`: API output with ids, hashes, timestamps and `token`/`key` fields;
//! - `worst: secrets`: every line holds secrets or near misses of many formats;
//! - `worst: one line`: a single 1 MiB+ line of base64 with keywords in it;
//! - `stream: prose`: model text fed to a `StreamRedactor` in 4-byte deltas;
//! - `stream: held line`: one long line that keeps the stream holding back.
//!
//! The redactor also knows five environment secret values, as in a session.
//!
//! Reported: CPU time of the measuring thread (`getrusage(RUSAGE_THREAD)`,
//! best of three), so a machine busy with other work does not inflate it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use tether::tools::Redactor;

fn rnd(seed: &mut u64, len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            alphabet[(*seed % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn fill(target: usize, mut line: impl FnMut(usize) -> String) -> String {
    let mut s = String::with_capacity(target + 1024);
    let mut i = 0;
    while s.len() < target {
        s.push_str(&line(i));
        s.push('\n');
        i += 1;
    }
    s
}

fn build_log(target: usize) -> String {
    let mut seed = 7u64;
    fill(target, |i| {
        match i % 6 {
        0 => format!("   Compiling serde_derive v1.0.{} ", i % 200),
        1 => format!(
            "warning: unused variable: `result_{}`\n  --> src/engine/turn.rs:{}:13\n   |\n{} |         let result = compute(&input);\n   |             ^^^^^^ help: prefix it with an underscore",
            i,
            i % 900,
            i % 900
        ),
        2 => format!("test tools::fs::tests::case_{i} ... ok"),
        3 => format!(
            "    Finished `dev` profile [unoptimized + debuginfo] target(s) in {}.{}s",
            i % 60,
            i % 100
        ),
        4 => format!(
            "npm WARN deprecated package-{}@{}.0.0: use the new API instead",
            rnd(&mut seed, 8, b"abcdefghijklmnopqrstuvwxyz"),
            i % 9
        ),
        _ => format!("  commit {}  Merge branch 'main'", rnd(&mut seed, 40, HEX)),
    }
    })
}

fn source_code(target: usize) -> String {
    let mut files = Vec::new();
    collect_rs(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    files.sort();
    let text: String = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let mut s = String::with_capacity(target + text.len());
    while s.len() < target {
        s.push_str(&text);
    }
    s
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn json_output(target: usize) -> String {
    let mut seed = 11u64;
    fill(target, |i| {
        format!(
            "{{\"id\": \"{}-{}-4{}-a{}-{}\", \"sha\": \"{}\", \"created\": \"2026-12-06T09:{:02}:00Z\", \"token_type\": \"bearer\", \"key\": \"item-{i}\", \"apiVersion\": \"v1\", \"size\": {}}},",
            rnd(&mut seed, 8, HEX),
            rnd(&mut seed, 4, HEX),
            rnd(&mut seed, 3, HEX),
            rnd(&mut seed, 3, HEX),
            rnd(&mut seed, 12, HEX),
            rnd(&mut seed, 40, HEX),
            i % 60,
            i * 31
        )
    })
}

fn worst_secrets(target: usize) -> String {
    let mut seed = 13u64;
    fill(target, |i| match i % 8 {
        0 => format!(
            "aws_access_key_id = AKIA{}",
            rnd(&mut seed, 16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        ),
        1 => format!(
            "token={} password={} api_key: {}",
            rnd(&mut seed, 32, ALNUM),
            rnd(&mut seed, 12, ALNUM),
            rnd(&mut seed, 24, ALNUM)
        ),
        2 => format!(
            "url postgres://app:{}@db:5432/x and https://u:{}@h/",
            rnd(&mut seed, 14, ALNUM),
            rnd(&mut seed, 10, ALNUM)
        ),
        3 => format!(
            "ghp_{} glpat-{} xoxb-1234567890-1234567890123-{}",
            rnd(&mut seed, 36, ALNUM),
            rnd(&mut seed, 20, ALNUM),
            rnd(&mut seed, 24, ALNUM)
        ),
        4 => format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{} sk-{} AIza{}",
            rnd(&mut seed, 30, ALNUM),
            rnd(&mut seed, 43, ALNUM),
            rnd(&mut seed, 48, ALNUM),
            rnd(&mut seed, 35, ALNUM)
        ),
        5 => format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----",
            rnd(&mut seed, 64, B64),
            rnd(&mut seed, 64, B64)
        ),
        6 => "the key they keep: secret token, access key, credential, Bearer auth, passwd sk- ey"
            .to_string(),
        _ => format!(
            "secret_name = x; token_file = /run/{}; key = map.get(k); AccountKey={}",
            rnd(&mut seed, 8, HEX),
            rnd(&mut seed, 40, B64)
        ),
    })
}

fn worst_one_line(target: usize) -> String {
    let mut seed = 17u64;
    let mut s = String::with_capacity(target + 64);
    while s.len() < target {
        s.push_str(&rnd(&mut seed, 200, B64));
        s.push_str("key=");
    }
    s
}

fn prose(target: usize) -> String {
    let words = [
        "the", "function", "returns", "an", "error", "when", "they", "pass", "a", "key", "that",
        "is", "not", "in", "map;", "I", "changed", "`lookup`", "to", "return", "Option", "and",
        "updated", "callers.", "Tests", "pass", "now.",
    ];
    let mut s = String::with_capacity(target + 64);
    let mut i = 0usize;
    while s.len() < target {
        s.push_str(words[i % words.len()]);
        i += 1;
        s.push(if i % 17 == 0 { '\n' } else { ' ' });
    }
    s
}

fn held_line(target: usize) -> String {
    // A suspicious word every few words: the stream holds until the line
    // ends (or its hold limit).
    let mut s = String::with_capacity(target + 64);
    let mut i = 0usize;
    while s.len() < target {
        s.push_str(if i % 4 == 0 { "x1 " } else { "word " });
        i += 1;
    }
    s
}

/// CPU seconds used by this thread so far.
fn thread_cpu() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage; RUSAGE_THREAD is Linux's.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn time_redact(r: &Redactor, name: &str, text: &str, chunk: usize) {
    // Tool output is redacted per call: cut the input into call-sized pieces.
    let pieces: Vec<&str> = {
        let mut v = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let mut end = (at + chunk).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            v.push(&text[at..end]);
            at = end;
        }
        v
    };
    let mut best = f64::MAX;
    let mut marks = 0;
    for _ in 0..3 {
        let t = thread_cpu();
        marks = 0;
        for p in &pieces {
            let out = r.redact(p);
            marks += out.matches("[REDACTED]").count();
        }
        best = best.min(thread_cpu() - t);
    }
    let mb = text.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{name:<18} {:>8.1} MiB/s  {:>8.2} ms CPU/MiB  ({mb:.1} MiB in {} KiB calls, {marks} secrets replaced)",
        mb / best,
        best * 1000.0 / mb,
        chunk / 1024
    );
}

fn time_stream(r: &Redactor, name: &str, text: &str, delta: usize) {
    let mut best = f64::MAX;
    let mut shown_len = 0;
    for _ in 0..3 {
        let t = thread_cpu();
        let mut s = r.stream();
        let mut shown = 0usize;
        let mut at = 0;
        while at < text.len() {
            let mut end = (at + delta).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            shown += s.push(&text[at..end]).len();
            at = end;
        }
        shown += s.finish().len();
        shown_len = shown;
        best = best.min(thread_cpu() - t);
    }
    let mb = text.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{name:<18} {:>8.1} MiB/s  {:>8.2} ms CPU/MiB  ({mb:.1} MiB in {delta}-byte deltas, {shown_len} bytes shown)",
        mb / best,
        best * 1000.0 / mb,
    );
}

fn main() {
    let mut mb = 4usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--mb") {
        mb = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(mb);
    }
    let target = mb * 1024 * 1024;
    let env: BTreeMap<String, String> = (0..5)
        .map(|i| {
            (
                format!("SERVICE{i}_TOKEN"),
                format!("env-secret-value-{i}-x9f"),
            )
        })
        .collect();
    let t = Instant::now();
    let r = Redactor::from_env(&env, &["sk-tether-key-for-bench"]);
    let _ = r.redact("warm up");
    println!(
        "rules compiled in {:.1} ms (once per process)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // 32 KiB: a command's output cap; the whole input at once as well.
    for chunk in [32 * 1024, target] {
        time_redact(&r, "build log", &build_log(target), chunk);
        time_redact(&r, "source code", &source_code(target), chunk);
        time_redact(&r, "JSON", &json_output(target), chunk);
        time_redact(&r, "worst: secrets", &worst_secrets(target), chunk);
        time_redact(&r, "worst: one line", &worst_one_line(target), chunk);
    }
    let small = target.min(1024 * 1024);
    time_stream(&r, "stream: prose", &prose(small), 4);
    time_stream(&r, "stream: held line", &held_line(small), 4);
}
