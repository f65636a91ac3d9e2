//! A guard in front of the LSP framework's reader. `tower-lsp-server` stops
//! reading for good after one undecodable frame (its codec error ends the
//! stream), so a single malformed message from an editor or a plugin would
//! kill the session. This task reads the real stdin, checks every frame, and
//! forwards only well-formed JSON-RPC messages. A malformed one becomes:
//! - an `invalid request` error answer when it carries a usable `id`
//!   (forwarded as a request to [`INVALID_REQUEST`], whose handler answers with
//!   the reason), or
//! - a logged warning otherwise (forwarded as the [`INVALID_MESSAGE`]
//!   notification).
//!
//! **Invariant:** this is the only reader of stdin in the process.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

/// Method of the synthetic request that answers a malformed request.
pub const INVALID_REQUEST: &str = "$/tether/invalidRequest";
/// Method of the synthetic notification that reports a malformed message.
pub const INVALID_MESSAGE: &str = "$/tether/invalidMessage";

const MAX_HEADER_LINE: usize = 8 * 1024;
const MAX_BODY: usize = 256 * 1024 * 1024;

enum Frame {
    Body(Vec<u8>),
    Bad(String),
    Eof,
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut bad: Option<String> = None;
    let mut line = Vec::new();
    let mut saw_any = false;
    loop {
        line.clear();
        let n = (&mut *r)
            .take(MAX_HEADER_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(if saw_any {
                Frame::Bad("stream ended inside a header".into())
            } else {
                Frame::Eof
            });
        }
        saw_any = true;
        if !line.ends_with(b"\n") {
            bad.get_or_insert_with(|| "header line too long or unterminated".into());
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            break;
        }
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(v) => length = Some(v),
                    Err(_) => {
                        bad.get_or_insert_with(|| {
                            format!("invalid Content-Length {:?}", value.trim())
                        });
                    }
                }
            }
            Some(_) => {} // Content-Type and friends
            None => {
                bad.get_or_insert_with(|| format!("not a header line: {:?}", truncate(text, 60)));
            }
        }
    }
    let Some(len) = length else {
        return Ok(Frame::Bad(
            bad.unwrap_or_else(|| "frame without Content-Length".into()),
        ));
    };
    if len > MAX_BODY {
        // Skip it without holding it in memory.
        let mut skip = (&mut *r).take(len as u64);
        tokio::io::copy(&mut skip, &mut tokio::io::sink()).await?;
        return Ok(Frame::Bad(format!("message of {len} bytes is too large")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(match bad {
        Some(b) => Frame::Bad(b),
        None => Frame::Body(body),
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Checks that `body` is a JSON-RPC 2.0 message the framework can decode.
/// On failure returns the reason and, when present and usable, the `id`.
pub fn check_message(body: &[u8]) -> Result<(), (String, Option<Value>)> {
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
        Some(Value::String(_)) => match o.get("params") {
            None | Some(Value::Object(_)) | Some(Value::Array(_)) | Some(Value::Null) => Ok(()),
            Some(_) => fail("\"params\" must be an object or an array".into()),
        },
        Some(_) => fail("\"method\" must be a string".into()),
        None => {
            if id.is_some() && (o.contains_key("result") || o.contains_key("error")) {
                Ok(())
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
pub fn guard<R: AsyncRead + Unpin + Send + 'static>(input: R) -> tokio::io::DuplexStream {
    let (mut tx, rx) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let mut r = BufReader::with_capacity(64 * 1024, input);
        loop {
            let frame = match read_frame(&mut r).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!("stdin closed: {e}");
                    break;
                }
            };
            let out = match frame {
                Frame::Eof => break,
                Frame::Body(body) => match check_message(&body) {
                    Ok(()) => {
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
        }
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

    #[tokio::test]
    async fn passes_good_frames_and_replaces_bad_ones() {
        let input = b"Content-Length: 9\r\n\r\n{not jsonContent-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}garbage\r\n\r\nContent-Length: 41\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"} ".to_vec();
        let mut out = guard(std::io::Cursor::new(input));
        let mut s = String::new();
        out.read_to_string(&mut s).await.expect("read");
        assert_eq!(s.matches(INVALID_MESSAGE).count(), 2, "{s}");
        assert_eq!(s.matches("\"initialized\"").count(), 2, "{s}");
    }
}
