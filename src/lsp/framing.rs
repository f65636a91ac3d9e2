//! A guard in front of the LSP framework's reader. `tower-lsp-server` stops
//! reading for good after one undecodable frame (its codec error ends the
//! stream), so a single malformed message from an editor or a plugin would
//! kill the session. This task reads the real stdin, checks every frame, and
//! forwards only well-formed JSON-RPC messages. A malformed one becomes:
//! - an `invalid request` error answer when it carries a usable `id`
//!   (forwarded as a request to [`INVALID_REQUEST`], whose handler answers with
//!   the reason), or
//! - a logged error otherwise (forwarded as the [`INVALID_MESSAGE`]
//!   notification).
//!
//! **A bad frame costs that frame only.** A header is recognised anywhere in
//! the stream by its shape, `Content-Length: <digits>` ending in a newline —
//! a shape valid JSON never contains (JSON strings hold no raw newline, and
//! the bare word is not JSON) — so after a wrong length, a missing or
//! non-numeric header or garbage, reading resumes at the next header:
//! - a body that is not JSON is dropped, and scanning resumes at its first
//!   byte (a length too short leaves the rest of the body before the next
//!   header; a length too long swallowed the next header, which is found
//!   inside it);
//! - while a body is still arriving, a header appearing inside it ends it at
//!   once, so a length far too long does not wait for bytes that never come;
//! - a length above the limit ([`DEFAULT_MAX_MESSAGE_BYTES`], setting
//!   `maxMessageBytes`) is refused with a logged error before any of its
//!   body is buffered; its bytes are skipped while scanning.
//!
//! Skipped bytes are never held: at most a header's worth is kept.
//!
//! **Invariant:** this is the only reader of stdin in the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Method of the synthetic request that answers a malformed request.
pub const INVALID_REQUEST: &str = "$/tether/invalidRequest";
/// Method of the synthetic notification that reports a malformed message.
pub const INVALID_MESSAGE: &str = "$/tether/invalidMessage";

/// Default largest message body accepted (`maxMessageBytes`).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// A header block longer than this is not a header.
const MAX_HEADER: usize = 8 * 1024;
/// How much is read from stdin at a time.
const READ_CHUNK: usize = 64 * 1024;
const NAME: &[u8] = b"content-length";

enum Frame {
    Body(Vec<u8>),
    Bad(String),
    Eof,
}

/// Where a `Content-Length` header line was found.
enum Anchor {
    /// `start` is where the name begins; the line ends just before `next`.
    Found {
        start: usize,
        length: u64,
        next: usize,
    },
    /// A candidate begins at `start` but the buffer ends before its line does.
    Partial {
        start: usize,
    },
    None,
}

/// Finds the first `Content-Length: <digits>[ \t]*\r?\n` at or after `from`.
fn find_anchor(buf: &[u8], from: usize) -> Anchor {
    let mut i = from;
    while i < buf.len() {
        let Some(off) = buf[i..].iter().position(|b| *b == b'c' || *b == b'C') else {
            return Anchor::None;
        };
        let start = i + off;
        match anchor_at(buf, start) {
            Some(Some((length, next))) => {
                return Anchor::Found {
                    start,
                    length,
                    next,
                }
            }
            Some(None) => return Anchor::Partial { start },
            None => i = start + 1,
        }
    }
    Anchor::None
}

/// `Some(Some(..))`: a header line at `start`; `Some(None)`: maybe one, the
/// buffer ends too soon; `None`: not one.
fn anchor_at(buf: &[u8], start: usize) -> Option<Option<(u64, usize)>> {
    let rest = &buf[start..];
    let incomplete = || (rest.len() < 256).then_some(None);
    for (k, want) in NAME.iter().enumerate() {
        match rest.get(k) {
            None => return incomplete(),
            Some(b) if b.to_ascii_lowercase() == *want => {}
            Some(_) => return None,
        }
    }
    let mut p = NAME.len();
    let skip_blanks = |p: &mut usize| {
        while matches!(rest.get(*p), Some(b' ' | b'\t')) {
            *p += 1;
        }
    };
    skip_blanks(&mut p);
    match rest.get(p) {
        None => return incomplete(),
        Some(b':') => p += 1,
        Some(_) => return None,
    }
    skip_blanks(&mut p);
    let digits = p;
    while rest.get(p).is_some_and(u8::is_ascii_digit) {
        p += 1;
    }
    if p == rest.len() {
        return incomplete();
    }
    if p == digits || p - digits > 20 {
        return None;
    }
    let length = std::str::from_utf8(&rest[digits..p])
        .ok()?
        .parse::<u64>()
        .unwrap_or(u64::MAX);
    skip_blanks(&mut p);
    if rest.get(p) == Some(&b'\r') {
        p += 1;
    }
    match rest.get(p) {
        None => incomplete(),
        Some(b'\n') => Some(Some((length, start + p + 1))),
        Some(_) => None,
    }
}

/// Whether skipped bytes were harmless: blank or `Name: value` header lines
/// (e.g. a `Content-Type` before the `Content-Length`).
fn only_headers(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes).split('\n').all(|line| {
        let line = line.trim();
        line.is_empty()
            || line.split_once(':').is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    })
}

/// A printable start of skipped bytes, for the log.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    format!("{:?}", text.as_ref())
}

/// Frames from a byte stream, resynchronising after bad ones.
struct Reader<R> {
    input: R,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    eof: bool,
    max: Arc<AtomicUsize>,
    /// Bytes skipped since the last frame, and the first few of them.
    skipped: usize,
    skipped_start: Vec<u8>,
    skipped_harmless: bool,
    /// The next skipped run is a refused frame's body: not reported again.
    quiet: bool,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    fn new(input: R, max: Arc<AtomicUsize>) -> Self {
        Reader {
            input,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            eof: false,
            max,
            skipped: 0,
            skipped_start: Vec::new(),
            skipped_harmless: true,
            quiet: false,
        }
    }

    /// Forgets the bytes before `pos`. Only between frames: positions into
    /// `buf` held elsewhere would move.
    fn compact(&mut self) {
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.buf.len() > READ_CHUNK) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Reads more input; false at end of input.
    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = self.input.read(&mut self.buf[old..]).await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e);
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Drops `buf[pos..to]` as skipped bytes.
    fn skip_to(&mut self, to: usize) {
        let bytes = &self.buf[self.pos..to];
        if !bytes.is_empty() {
            if self.skipped_start.len() < 60 {
                let n = (60 - self.skipped_start.len()).min(bytes.len());
                self.skipped_start.extend_from_slice(&bytes[..n]);
            }
            self.skipped_harmless &= only_headers(bytes);
            self.skipped += bytes.len();
        }
        self.pos = to;
    }

    /// The report for the bytes skipped before a header, if they matter.
    fn take_skipped(&mut self) -> Option<String> {
        let report = (self.skipped > 0 && !self.skipped_harmless && !self.quiet).then(|| {
            format!(
                "skipped {} byte(s) that were not a message (a missing or invalid Content-Length header, or a wrong length), starting with {}",
                self.skipped,
                preview(&self.skipped_start)
            )
        });
        self.skipped = 0;
        self.skipped_start.clear();
        self.skipped_harmless = true;
        self.quiet = false;
        report
    }

    async fn next(&mut self) -> std::io::Result<Frame> {
        loop {
            // 1. The next header line.
            let (length, mut p) = loop {
                self.compact();
                match find_anchor(&self.buf, self.pos) {
                    Anchor::Found {
                        start,
                        length,
                        next,
                    } => {
                        self.skip_to(start);
                        break (length, next);
                    }
                    Anchor::Partial { start } => {
                        self.skip_to(start);
                        if !self.fill().await? {
                            let end = self.buf.len();
                            self.skip_to(end);
                            return Ok(self.end());
                        }
                    }
                    Anchor::None => {
                        // Keep a possible name's first bytes; drop the rest.
                        let keep = self.buf.len().saturating_sub(NAME.len()).max(self.pos);
                        self.skip_to(keep);
                        if !self.fill().await? {
                            let end = self.buf.len();
                            self.skip_to(end);
                            return Ok(self.end());
                        }
                    }
                }
            };
            if let Some(report) = self.take_skipped() {
                return Ok(Frame::Bad(report));
            }
            let header_start = self.pos;
            // 2. The rest of the header block, up to its blank line.
            let body_start = loop {
                let Some(nl) = self.buf[p..].iter().position(|b| *b == b'\n') else {
                    if self.buf.len() - header_start > MAX_HEADER {
                        break None;
                    }
                    if !self.fill().await? {
                        let end = self.buf.len();
                        self.skip_to(end);
                        return Ok(Frame::Bad("the input ended inside a header".into()));
                    }
                    continue;
                };
                let line = &self.buf[p..p + nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(|b| *b == b' ' || *b == b'\t') {
                    break Some(p + nl + 1);
                }
                if !only_headers(line) || matches!(anchor_at(&self.buf, p), Some(Some(_))) {
                    // Not a `Name: value` line, or a second Content-Length:
                    // the blank line is missing. Resume scanning there.
                    break None;
                }
                p += nl + 1;
                if p - header_start > MAX_HEADER {
                    break None;
                }
            };
            let Some(body_start) = body_start else {
                let header = self.buf[header_start..p.min(self.buf.len())].to_vec();
                self.pos = p.min(self.buf.len());
                self.quiet = true;
                return Ok(Frame::Bad(format!(
                    "a header without its blank line: {}",
                    preview(&header)
                )));
            };
            // 3. The body.
            let max = self.max.load(Ordering::Relaxed);
            if length > max as u64 {
                tracing::error!(
                    "refused a message of {length} bytes: the limit is {max} (maxMessageBytes)"
                );
                self.pos = body_start;
                self.quiet = true;
                return Ok(Frame::Bad(format!(
                    "refused a message of {length} bytes: larger than the limit of {max} bytes (setting maxMessageBytes)"
                )));
            }
            let length = length as usize;
            let mut scanned = body_start;
            loop {
                let have = self.buf.len() - body_start;
                if have >= length {
                    let body = &self.buf[body_start..body_start + length];
                    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                        let body = body.to_vec();
                        self.pos = body_start + length;
                        return Ok(Frame::Body(body));
                    }
                    // Not JSON: the length is wrong or the body is garbage.
                    // Resume at the body's first byte.
                    let shown = preview(body);
                    self.pos = body_start;
                    self.quiet = true;
                    return Ok(Frame::Bad(format!(
                        "the {length} bytes after a Content-Length header are not JSON (a wrong length or a broken body), starting with {shown}"
                    )));
                }
                // A header inside a body still arriving ends it.
                if let Anchor::Found { start, .. } = find_anchor(
                    &self.buf,
                    scanned.saturating_sub(NAME.len() + 256).max(body_start),
                ) {
                    let got = start - body_start;
                    self.pos = start;
                    return Ok(Frame::Bad(format!(
                        "a message announced {length} bytes but the next header began after {got}"
                    )));
                }
                scanned = self.buf.len();
                if !self.fill().await? {
                    let got = self.buf.len() - body_start;
                    self.pos = self.buf.len();
                    return Ok(Frame::Bad(format!(
                        "the input ended after {got} of a message's {length} bytes"
                    )));
                }
            }
        }
    }

    /// End of input: a last report of skipped bytes, else the end.
    fn end(&mut self) -> Frame {
        match self.take_skipped() {
            Some(r) => Frame::Bad(r),
            None => Frame::Eof,
        }
    }
}

/// Checks that `body` is a JSON-RPC 2.0 message the framework can decode.
/// Returns its method (`None` for a response); on failure the reason and,
/// when present and usable, the `id`.
pub fn check_message(body: &[u8]) -> Result<Option<String>, (String, Option<Value>)> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| (format!("body is not JSON: {e}"), None))?;
    let Some(o) = v.as_object() else {
        return Err(("message is not a JSON object".into(), None));
    };
    let id = o.get("id").cloned();
    let usable_id = id
        .clone()
        .filter(|i| i.is_string() || i.is_i64() || i.is_u64());
    let fail = |why: String| Err((why, usable_id.clone()));
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return fail("missing \"jsonrpc\": \"2.0\"".into());
    }
    if let Some(id) = &id {
        if !(id.is_string() || id.is_i64() || id.is_u64() || id.is_null()) {
            return Err(("\"id\" must be a number, a string or null".into(), None));
        }
    }
    match o.get("method") {
        Some(Value::String(m)) => match o.get("params") {
            None | Some(Value::Object(_)) | Some(Value::Array(_)) | Some(Value::Null) => {
                Ok(Some(m.clone()))
            }
            Some(_) => fail("\"params\" must be an object or an array".into()),
        },
        Some(_) => fail("\"method\" must be a string".into()),
        None => {
            if id.is_some() && (o.contains_key("result") || o.contains_key("error")) {
                Ok(None)
            } else {
                fail("neither a request nor a response".into())
            }
        }
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Reads `input`, writes only well-formed frames to the returned reader.
/// Bodies above `max` bytes (read for every frame, so it can be changed
/// after `initialize`) are refused. `closed` is cancelled when the input ends
/// or an `exit` notification passed.
pub fn guard<R: AsyncRead + Unpin + Send + 'static>(
    input: R,
    max: Arc<AtomicUsize>,
    closed: CancellationToken,
) -> tokio::io::DuplexStream {
    let (mut tx, rx) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let mut r = Reader::new(input, max);
        loop {
            let frame = match r.next().await {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!("stdin closed: {e}");
                    break;
                }
            };
            let mut exit = false;
            let out = match frame {
                Frame::Eof => break,
                Frame::Body(body) => match check_message(&body) {
                    Ok(method) => {
                        exit = method.as_deref() == Some("exit");
                        let mut framed =
                            format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
                        framed.extend_from_slice(&body);
                        framed
                    }
                    Err((reason, Some(id))) => {
                        tracing::warn!("malformed request {id}: {reason}");
                        encode(
                            &json!({"jsonrpc": "2.0", "id": id, "method": INVALID_REQUEST, "params": {"reason": reason}}),
                        )
                    }
                    Err((reason, None)) => {
                        tracing::warn!("malformed message: {reason}");
                        encode(
                            &json!({"jsonrpc": "2.0", "method": INVALID_MESSAGE, "params": {"reason": reason}}),
                        )
                    }
                },
                Frame::Bad(reason) => {
                    tracing::warn!("malformed frame: {reason}");
                    encode(
                        &json!({"jsonrpc": "2.0", "method": INVALID_MESSAGE, "params": {"reason": reason}}),
                    )
                }
            };
            if tx.write_all(&out).await.is_err() {
                break;
            }
            if exit {
                break;
            }
        }
        closed.cancel();
        let _ = tx.shutdown().await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_message_shapes() {
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{}}"#).is_ok());
        assert!(check_message(br#"{"jsonrpc":"2.0","method":"x"}"#).is_ok());
        assert!(check_message(br#"{"jsonrpc":"2.0","id":"a","result":null}"#).is_ok());
        assert!(matches!(check_message(b"{not json"), Err((_, None))));
        assert!(matches!(
            check_message(br#"{"jsonrpc":"2.0","id":7,"method":3}"#),
            Err((_, Some(id))) if id == 7
        ));
        assert!(check_message(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).is_err());
        assert!(check_message(br#"[1,2]"#).is_err());
    }

    /// Hands out its bytes a few at a time, so every partial-read path runs.
    struct Trickle(Vec<u8>, usize, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let Trickle(data, at, step) = &mut *self;
            let n = (*step).min(data.len() - *at).min(buf.remaining());
            buf.put_slice(&data[*at..*at + n]);
            *at += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn frame(body: &str) -> Vec<u8> {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body.as_bytes());
        f
    }

    fn request(id: usize) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tether/sessions","params":{{}}}}"#)
    }

    /// What the guard forwards for `input`: the good messages' ids and the
    /// reasons of the bad ones.
    async fn forwarded(input: Vec<u8>, max: usize, step: usize) -> (Vec<u64>, Vec<String>) {
        let closed = CancellationToken::new();
        let mut out = guard(
            Trickle(input, 0, step),
            Arc::new(AtomicUsize::new(max)),
            closed.clone(),
        );
        let mut s = Vec::new();
        out.read_to_end(&mut s).await.expect("read");
        assert!(closed.is_cancelled(), "the end of input is reported");
        let mut r = Reader::new(&s[..], Arc::new(AtomicUsize::new(usize::MAX)));
        let (mut ids, mut bad) = (Vec::new(), Vec::new());
        loop {
            match r.next().await.expect("read") {
                Frame::Eof => break,
                Frame::Bad(b) => panic!("the guard's own output is well framed: {b}"),
                Frame::Body(b) => {
                    let v: Value = serde_json::from_slice(&b).expect("json");
                    if v["method"] == INVALID_MESSAGE {
                        bad.push(v["params"]["reason"].as_str().unwrap_or("").to_string());
                    } else {
                        ids.push(v["id"].as_u64().expect("id"));
                    }
                }
            }
        }
        (ids, bad)
    }

    #[tokio::test]
    async fn a_bad_frame_costs_that_frame_only() {
        let good = request(0);
        let broken = |header: &str, body: &str| {
            let mut f = header.as_bytes().to_vec();
            f.extend_from_slice(body.as_bytes());
            f
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "10 bytes short",
                broken(
                    &format!("Content-Length: {}\r\n\r\n", good.len() - 10),
                    &good,
                ),
            ),
            (
                "10 bytes long",
                broken(
                    &format!("Content-Length: {}\r\n\r\n", good.len() + 10),
                    &good,
                ),
            ),
            ("100000", broken("Content-Length: 100000\r\n\r\n", &good)),
            (
                "huge",
                broken("Content-Length: 1000000000000\r\n\r\n", &good),
            ),
            (
                "beyond u64",
                broken("Content-Length: 99999999999999999999\r\n\r\n", &good),
            ),
            ("non-numeric", broken("Content-Length: many\r\n\r\n", &good)),
            ("missing header", broken("\r\n\r\n", &good)),
            (
                "only Content-Type",
                broken("Content-Type: application/json\r\n\r\n", &good),
            ),
            (
                "no blank line",
                broken(&format!("Content-Length: {}\r\n", good.len()), &good),
            ),
            (
                "garbage",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff junk".to_vec(),
            ),
            ("not JSON", frame("{not json")),
            (
                "oversize",
                frame(&format!(
                    r#"{{"jsonrpc":"2.0","method":"x","params":"{}"}}"#,
                    "a".repeat(5000)
                )),
            ),
        ];
        for step in [7, 64 * 1024] {
            for (name, bad) in &cases {
                let mut input = frame(&request(1000));
                input.extend_from_slice(bad);
                for id in 1..=30 {
                    input.extend(frame(&request(id)));
                }
                let (ids, reasons) = forwarded(input, 4096, step).await;
                let want: Vec<u64> = std::iter::once(1000).chain(1..=30).collect();
                assert_eq!(ids, want, "{name} (reads of {step}): {reasons:?}");
                assert_eq!(reasons.len(), 1, "{name}: reported once: {reasons:?}");
            }
        }
    }

    #[tokio::test]
    async fn an_oversize_frame_is_refused_without_being_buffered() {
        // 250 MB announced and sent, limit 1 MiB: refused at once, skipped
        // while scanning, and the next request still arrives.
        let body = format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":["{}"]}}"#,
            "a".repeat(250 * 1024 * 1024)
        );
        let mut input = frame(&body);
        drop(body);
        input.extend(frame(&request(7)));
        let mut r = Reader::new(&input[..], Arc::new(AtomicUsize::new(1024 * 1024)));
        assert!(matches!(r.next().await, Ok(Frame::Bad(_))));
        assert!(matches!(r.next().await, Ok(Frame::Body(_))));
        assert!(
            r.buf.capacity() < 1024 * 1024,
            "held {} bytes",
            r.buf.capacity()
        );
        let (ids, reasons) = forwarded(input, 1024 * 1024, 64 * 1024).await;
        assert_eq!(ids, [7]);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("maxMessageBytes"), "{reasons:?}");
    }

    #[tokio::test]
    async fn harmless_headers_and_an_exit_are_handled() {
        let mut input = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n".to_vec();
        input.extend(frame(&request(1)));
        input.extend(b"content-length:   ".iter());
        let exit = r#"{"jsonrpc":"2.0","method":"exit"}"#;
        input.extend(format!("{}\r\nContent-Type: x\r\n\r\n{exit}", exit.len()).bytes());
        input.extend(frame(&request(2)));
        let closed = CancellationToken::new();
        let mut out = guard(
            std::io::Cursor::new(input),
            Arc::new(AtomicUsize::new(DEFAULT_MAX_MESSAGE_BYTES)),
            closed.clone(),
        );
        let mut s = String::new();
        out.read_to_string(&mut s).await.expect("read");
        assert!(s.contains(r#""id":1"#) && s.contains(r#""exit""#), "{s}");
        assert!(!s.contains(INVALID_MESSAGE), "{s}");
        assert!(!s.contains(r#""id":2"#), "nothing is read after exit: {s}");
        assert!(closed.is_cancelled());
    }
}
