//! Parsing throughput of a recorded 10k-chunk chat-completions stream.
//!
//! `cargo run --release --example stream_bench`
//!
//! Generates a stream shaped like OpenAI's — 7,998 text deltas, 2,000
//! tool-call argument deltas over four calls, a finish chunk and a usage
//! chunk (10,000 chunks), then `[DONE]` — and measures:
//! 1. the parsing path alone — `model::sse::Decoder` + `model::wire::Assembler`
//!    — fed one event per read (as a live stream arrives) and in 16 KiB reads;
//! 2. the whole client path — `ModelClient::complete` against a tiny HTTP
//!    server on 127.0.0.1 that sends one event per HTTP chunk — with the client
//!    on its own thread so that its CPU time can be told from the server's.
//!
//! CPU time comes from `getrusage` (`RUSAGE_THREAD` for the client thread).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether::config::{Config, Sources};
use tether::model::sse::{Decoder, Item};
use tether::model::wire::Assembler;
use tether::model::{ModelClient, StreamEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const TEXT_CHUNKS: usize = 7_998;
const TOOL_CHUNKS: usize = 2_000;
const CALLS: usize = 4;

/// The stream's events (the `data` payloads), in order.
fn recorded_events() -> Vec<String> {
    let head = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion.chunk",
            "created": 1_741_569_952,
            "model": "gpt-4.1-2025-04-14",
            "service_tier": "default",
            "system_fingerprint": "fp_e5ba9d3e9a",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
        .to_string()
    };
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
    let mut events = Vec::with_capacity(TEXT_CHUNKS + TOOL_CHUNKS + 3);
    for i in 0..TEXT_CHUNKS {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": words[0], "refusal": null})
        } else {
            json!({"content": words[i % words.len()]})
        };
        events.push(head(delta, Value::Null));
    }
    let per_call = TOOL_CHUNKS / CALLS;
    for call in 0..CALLS {
        for j in 0..per_call {
            let tc = if j == 0 {
                json!({"index": call, "id": format!("call_{call:04}abcdefghijkl"), "type": "function",
                       "function": {"name": "write_file", "arguments": "{\"path\": \"src/gen.rs\", \"content\": \""}})
            } else if j == per_call - 1 {
                json!({"index": call, "function": {"arguments": "\"}"}})
            } else {
                json!({"index": call, "function": {"arguments": "fn f() {}\\n"}})
            };
            events.push(head(json!({"tool_calls": [tc]}), Value::Null));
        }
    }
    events.push(head(json!({}), json!("tool_calls")));
    events.push(
        json!({"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
               "created": 1_741_569_952, "model": "gpt-4.1-2025-04-14", "choices": [],
               "usage": {"prompt_tokens": 1234, "completion_tokens": 10_000, "total_tokens": 11_234}})
        .to_string(),
    );
    events
}

/// The SSE body, one `Vec` per event (`data: …\n\n`), `[DONE]` last.
fn sse_pieces(events: &[String]) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = events
        .iter()
        .map(|e| format!("data: {e}\n\n").into_bytes())
        .collect();
    pieces.push(b"data: [DONE]\n\n".to_vec());
    pieces
}

fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid pointer.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Parses the pieces as the client does; returns (text bytes, tool calls, chunks).
fn parse(pieces: &[&[u8]]) -> (usize, usize, usize) {
    let mut dec = Decoder::default();
    let mut asm = Assembler::default();
    let mut items = Vec::new();
    let mut chunks = 0;
    let mut shown = 0;
    for p in pieces {
        dec.feed(p, &mut items);
        for item in items.drain(..) {
            if let Item::Data(d) = item {
                if d == "[DONE]" {
                    asm.saw_done = true;
                    continue;
                }
                chunks += 1;
                if let Ok(evs) = asm.push(&d) {
                    for e in evs {
                        if let StreamEvent::Text(t) = e {
                            shown += t.len();
                        }
                    }
                }
            }
        }
    }
    dec.finish(&mut items);
    let c = asm.finish();
    assert_eq!(shown, c.text.len());
    assert!(c
        .tool_calls
        .iter()
        .all(|t| serde_json::from_str::<Value>(&t.arguments).is_ok()));
    (c.text.len(), c.tool_calls.len(), chunks)
}

fn report(label: &str, chunks: usize, wall: Duration, cpu: Duration) {
    let per_s = |d: Duration| chunks as f64 / d.as_secs_f64();
    println!(
        "{label}: {:>10.0} chunks/s wall, {:>10.0} chunks/s per CPU-second ({:.2} µs CPU/chunk)",
        per_s(wall),
        per_s(cpu),
        cpu.as_secs_f64() * 1e6 / chunks as f64
    );
}

fn bench_parse(pieces: &[Vec<u8>], rounds: usize) {
    let per_event: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let body: Vec<u8> = pieces.concat();
    let reads: Vec<&[u8]> = body.chunks(16 * 1024).collect();
    for (label, input) in [
        ("parse, one event per read ", &per_event),
        ("parse, 16 KiB reads       ", &reads),
    ] {
        let _ = parse(input); // warm-up
        let (c0, t0) = (cpu(libc::RUSAGE_THREAD), Instant::now());
        let mut chunks = 0;
        for _ in 0..rounds {
            chunks += parse(input).2;
        }
        report(label, chunks, t0.elapsed(), cpu(libc::RUSAGE_THREAD) - c0);
    }
}

/// Serves the pieces, one HTTP chunk each, to every request.
async fn serve(listener: tokio::net::TcpListener, pieces: std::sync::Arc<Vec<Vec<u8>>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let pieces = pieces.clone();
        tokio::spawn(async move {
            // Read the request head and body (Content-Length).
            let mut buf = Vec::new();
            let mut tmp = [0u8; 8192];
            loop {
                let Ok(n) = s.read(&mut tmp).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&tmp[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, s);
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if out.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for p in pieces.iter() {
                let frame = format!("{:x}\r\n", p.len());
                if out.write_all(frame.as_bytes()).await.is_err()
                    || out.write_all(p).await.is_err()
                    || out.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
            let _ = out.write_all(b"0\r\n\r\n").await;
            let _ = out.flush().await;
        });
    }
}

fn bench_http(pieces: Vec<Vec<u8>>, chunks_per_round: usize, rounds: usize) {
    let pieces = std::sync::Arc::new(pieces);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let _ = addr_tx.send(listener.local_addr().expect("local addr"));
            serve(listener, pieces).await;
        });
    });
    let addr = addr_rx.recv().expect("server address");
    let opts = match Config::load(&Sources {
        env: Default::default(),
        init_options: None,
        workspace_root: None,
    }) {
        Ok(c) => c.model_options,
        Err(e) => panic!("default config: {e}"),
    };
    let client =
        ModelClient::new(format!("http://{addr}/v1"), "bench".into(), None, opts).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let messages = [json!({"role": "user", "content": "go"})];
    let cancel = CancellationToken::new();
    let run = || {
        rt.block_on(async {
            let mut shown = 0usize;
            let mut on = |e: StreamEvent| {
                if let StreamEvent::Text(t) = e {
                    shown += t.len();
                }
            };
            let c = client
                .complete(&messages, &[], &mut on, &cancel)
                .await
                .expect("completion");
            assert_eq!(c.tool_calls.len(), CALLS);
            assert_eq!(shown, c.text.len());
        })
    };
    run(); // warm-up (connection set-up, allocations)
    let (c0, t0) = (cpu(libc::RUSAGE_THREAD), Instant::now());
    for _ in 0..rounds {
        run();
    }
    report(
        "HTTP end to end (client)  ",
        chunks_per_round * rounds,
        t0.elapsed(),
        cpu(libc::RUSAGE_THREAD) - c0,
    );
}

fn main() {
    let events = recorded_events();
    let pieces = sse_pieces(&events);
    let bytes: usize = pieces.iter().map(Vec::len).sum();
    let (text, calls, chunks) = parse(&pieces.iter().map(Vec::as_slice).collect::<Vec<_>>());
    println!(
        "recorded stream: {chunks} chunks ({TEXT_CHUNKS} text, {TOOL_CHUNKS} tool-call, finish, usage), {:.2} MB; assembles {text} bytes of text and {calls} tool calls",
        bytes as f64 / 1e6
    );
    let (c0, t0) = (cpu(libc::RUSAGE_SELF), Instant::now());
    bench_parse(&pieces, 20);
    bench_http(pieces, chunks, 10);
    println!(
        "total: {:.2} s wall, {:.2} s CPU (process, incl. the local server)",
        t0.elapsed().as_secs_f64(),
        (cpu(libc::RUSAGE_SELF) - c0).as_secs_f64()
    );
}
