//! A small, lenient decoder for the body of a chat-completions response.
//!
//! Owns the byte-level framing only: it turns the bytes of an HTTP body, in
//! whatever pieces they arrive, into the `data` of each server-sent event, or,
//! when the server ignored `stream: true`, into one whole body. It knows
//! nothing about what the data means (that is [`super::wire`]).
//!
//! Leniency, beyond the SSE specification it follows (`\n`, `\r\n` or `\r`
//! line ends, comments, multi-line `data`, a byte-order mark):
//! - the body is sniffed, not trusted to its `Content-Type`: a body whose first
//!   significant byte is `{` or `[` is a plain JSON body;
//! - an event still open at the end of the body is delivered (servers that
//!   forget the blank line after the last event, or `[DONE]`);
//! - invalid UTF-8 is replaced, never an error.

/// One thing the decoder found in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The `data` of one event (multi-line data joined with `\n`).
    Data(String),
    /// The whole body of a response that is not an event stream (delivered by
    /// [`Decoder::finish`] only).
    Whole(String),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing significant seen yet.
    #[default]
    Sniffing,
    Events,
    Whole,
}

/// Incremental decoder; feed it the body's bytes in any split.
#[derive(Debug, Default)]
pub struct Decoder {
    mode: Mode,
    /// Bytes not yet consumed (an incomplete line, or the whole body).
    buf: Vec<u8>,
    /// The previous line ended with `\r`: a `\n` right after belongs to it.
    skip_lf: bool,
    /// Data lines of the event being built.
    data: String,
    has_data: bool,
}

impl Decoder {
    /// Feeds the next bytes of the body; complete events are pushed to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Item>) {
        if self.mode != Mode::Sniffing {
            return self.take(bytes, out);
        }
        // Leading whitespace and a byte-order mark decide nothing.
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        self.buf.extend_from_slice(bytes);
        if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
            return; // maybe the rest of a BOM is still to come
        }
        let start = if self.buf.starts_with(BOM) {
            BOM.len()
        } else {
            0
        };
        let Some(skip) = self.buf[start..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
        else {
            // Only blanks so far; a BOM can no longer start the body.
            self.buf.clear();
            self.buf.push(b' ');
            return;
        };
        let rest = self.buf.split_off(start + skip);
        self.buf.clear();
        self.mode = match rest[0] {
            b'{' | b'[' => Mode::Whole,
            _ => Mode::Events,
        };
        self.take(&rest, out);
    }

    fn take(&mut self, bytes: &[u8], out: &mut Vec<Item>) {
        match self.mode {
            Mode::Whole => self.buf.extend_from_slice(bytes),
            _ => self.lines(bytes, out),
        }
    }

    /// Ends the body: delivers an event left open, or the whole body.
    pub fn finish(&mut self, out: &mut Vec<Item>) {
        match self.mode {
            Mode::Sniffing => {}
            Mode::Whole => {
                let body = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                out.push(Item::Whole(body));
            }
            Mode::Events => {
                if !self.buf.is_empty() {
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, out);
                }
                self.dispatch(out);
            }
        }
    }

    fn lines(&mut self, bytes: &[u8], out: &mut Vec<Item>) {
        let mut bytes = bytes;
        if self.skip_lf {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
            if !bytes.is_empty() {
                self.skip_lf = false;
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' || b == b'\r' {
                if self.buf.is_empty() {
                    self.line(&bytes[start..i], out);
                } else {
                    let mut line = std::mem::take(&mut self.buf);
                    line.extend_from_slice(&bytes[start..i]);
                    self.line(&line, out);
                }
                if b == b'\r' {
                    if i + 1 < bytes.len() {
                        if bytes[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Item>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // a comment, e.g. OpenRouter's ": OPENROUTER PROCESSING"
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(&String::from_utf8_lossy(value));
            self.has_data = true;
        }
        // `event`, `id`, `retry` and unknown fields carry nothing we use.
    }

    fn dispatch(&mut self, out: &mut Vec<Item>) {
        if self.has_data {
            self.has_data = false;
            out.push(Item::Data(std::mem::take(&mut self.data)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> Vec<Item> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn data(items: &[&str]) -> Vec<Item> {
        items.iter().map(|s| Item::Data(s.to_string())).collect()
    }

    #[test]
    fn events_in_any_split_and_line_ending() {
        let body = b"data: {\"a\":1}\n\n: comment\r\nevent: x\r\ndata:{\"b\":2}\r\n\r\ndata: one\rdata: two\r\rdata: [DONE]\n\n";
        let want = data(&["{\"a\":1}", "{\"b\":2}", "one\ntwo", "[DONE]"]);
        assert_eq!(decode(&[body]), want);
        // Every split point, including between \r and \n.
        for cut in 0..body.len() {
            assert_eq!(decode(&[&body[..cut], &body[cut..]]), want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode(&bytes), want);
    }

    #[test]
    fn open_event_at_eof_is_delivered() {
        assert_eq!(
            decode(&[b"data: {\"a\":1}\n\ndata: {\"b\":2}"]),
            data(&["{\"a\":1}", "{\"b\":2}"])
        );
        assert_eq!(decode(&[b"data: x\n"]), data(&["x"]));
        assert_eq!(decode(&[b""]), vec![]);
    }

    #[test]
    fn json_body_is_sniffed() {
        let out = decode(&[b"\xEF\xBB\xBF \n", b" {\"choices\"", b":[]}"]);
        assert_eq!(out, vec![Item::Whole("{\"choices\":[]}".into())]);
        // A byte-order mark split across reads is still one.
        assert_eq!(
            decode(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]),
            data(&["x"])
        );
    }

    #[test]
    fn utf8_split_across_pieces_and_invalid_bytes() {
        let s = "data: héllo 😀\n\n".as_bytes();
        for cut in 0..s.len() {
            assert_eq!(
                decode(&[&s[..cut], &s[cut..]]),
                data(&["héllo 😀"]),
                "cut at {cut}"
            );
        }
        assert_eq!(decode(&[b"data: a\xFFb\n\n"]), data(&["a\u{FFFD}b"]));
    }

    proptest::proptest! {
        /// However the body is split into reads, the events are the same.
        #[test]
        fn any_split_decodes_the_same(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "data: {\"a\":1}", "data:x", "data: é😀", "", ":comment", "event: e",
                "id: 3", "retry: 10", "data", "\u{feff}", "\u{feff}data: bom", " ", "{",
                "data: [DONE]",
            ]), 0..24),
            ends in proptest::collection::vec(proptest::sample::select(vec!["\n", "\r\n", "\r"]), 24),
            cuts in proptest::collection::vec(0usize..512, 0..6),
        ) {
            let mut body = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                body.extend_from_slice(p.as_bytes());
                body.extend_from_slice(ends[i].as_bytes());
            }
            let whole = decode(&[&body]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&body[at..c]);
                at = c;
            }
            pieces.push(&body[at..]);
            proptest::prop_assert_eq!(decode(&pieces), whole);
        }
    }
}
