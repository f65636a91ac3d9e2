//! Text for a person's screen. What the model writes (and what tools print,
//! and what the store keeps of both) can hold control characters: an escape
//! sequence that reaches a terminal can set the clipboard (OSC 52), clear the
//! screen, retitle the window or hide a link (OSC 8). Every place that shows
//! such text to a person passes it through here first.
//!
//! Control characters are shown, not dropped, so a person sees that something
//! was there: every C0 control except `\n` and `\t`, DEL and every C1 control
//! (U+0080–U+009F) becomes `\u{…}` with its hex code (ESC is `\u{1b}`), and
//! `\r\n` becomes `\n`. JSON output keeps the raw text, escaped by JSON
//! ([`json_for_terminal`]).

use std::borrow::Cow;

/// A control character a terminal may act on (everything but `\n` and `\t`).
fn is_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// DEL or a C1 control: what JSON may carry unescaped.
fn is_del_or_c1(c: char) -> bool {
    c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c)
}

fn escape_into(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

/// `s` with every control character but `\n` and `\t` shown as `\u{…}`, and
/// `\r\n` as `\n`. For text that may span lines: a reply, a message.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if is_control(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as one field of one line: like [`printable`], and `\n`, `\t` and `\r`
/// are shown as `\u{…}` too, so a title cannot start a new row or column.
pub fn printable_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c.is_control() {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for text that arrives in pieces (a streamed reply): a `\r`
/// at the end of one piece waits to see whether the next starts with `\n`.
#[derive(Debug, Default)]
pub struct PrintableStream {
    held_cr: bool,
}

impl PrintableStream {
    /// The printable form of the next piece.
    pub fn push(&mut self, piece: &str) -> String {
        let mut text = String::with_capacity(piece.len() + 1);
        if std::mem::take(&mut self.held_cr) {
            text.push('\r');
        }
        text.push_str(piece);
        if text.ends_with('\r') {
            text.pop();
            self.held_cr = true;
        }
        printable(&text).into_owned()
    }

    /// What is still held back (a lone `\r`), once the text has ended.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.held_cr) {
            printable("\r").into_owned()
        } else {
            String::new()
        }
    }
}

/// JSON text safe for a terminal. `serde_json` escapes C0 controls in
/// strings but writes DEL and C1 controls as they are; this escapes those as
/// `\u007f` … `\u009f` too. The value read back is the same: outside strings
/// JSON has no such characters.
pub fn json_for_terminal(json: String) -> String {
    if !json.chars().any(is_del_or_c1) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_del_or_c1(c) {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes one line to stderr, shown with [`printable`]; a stderr that cannot
/// be written to is not worth a panic.
pub fn eprint_line(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(printable(line).as_bytes());
    let _ = err.write_all(b"\n");
}

/// How a command-line command failed. `main` owns the printing: a message
/// goes to stderr as `tether: …`, and a closed stdout (`tether … | head`) is
/// success, as in ripgrep.
#[derive(Debug)]
pub enum CliError {
    /// Say this (shown with [`printable`]) and exit with this code.
    Failed { message: String, code: u8 },
    /// Writing to stdout failed.
    Stdout(std::io::Error),
}

impl CliError {
    /// A failure with exit code 1.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::Failed {
            message: message.into(),
            code: 1,
        }
    }

    /// Reports the failure on stderr and gives the process's exit code.
    pub fn report(self) -> std::process::ExitCode {
        match self {
            CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                std::process::ExitCode::SUCCESS
            }
            CliError::Stdout(e) => {
                eprint_line(&format!("tether: cannot write to stdout: {e}"));
                std::process::ExitCode::FAILURE
            }
            CliError::Failed { message, code } => {
                eprint_line(&format!("tether: {message}"));
                std::process::ExitCode::from(code)
            }
        }
    }
}

/// What was printed, with a closed stdout (`… | head -1`: nobody reads the
/// rest) counted as success, for commands whose exit code is their answer.
pub fn unless_closed(printed: Result<(), CliError>) -> Result<(), CliError> {
    match printed {
        Err(CliError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// What a command-line command ends with.
pub type CliResult = Result<std::process::ExitCode, CliError>;

/// Writes text meant for a person to stdout, shown with [`printable`]
/// (callers escape one-line fields with [`printable_line`] first).
pub fn print(text: &str) -> Result<(), CliError> {
    print_raw(&printable(text))
}

/// Writes already safe text (e.g. from [`json_for_terminal`]) to stdout.
pub fn print_raw(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character a terminal treats as a control: C0, DEL, C1.
    fn all_controls() -> String {
        (0u32..0x20)
            .chain(0x7f..=0x9f)
            .filter_map(char::from_u32)
            .collect()
    }

    fn no_control_bytes(s: &str, keep: &[u8]) -> bool {
        s.chars()
            .all(|c| !c.is_control() || keep.contains(&(c as u8)))
    }

    #[test]
    fn every_control_is_shown_escaped_but_newline_and_tab() {
        let s = format!("a{}b", all_controls());
        let p = printable(&s);
        assert!(no_control_bytes(&p, b"\n\t"), "{p:?}");
        assert!(p.contains("\\u{1b}") && p.contains("\\u{7f}") && p.contains("\\u{9b}"));
        assert!(p.contains('\n') && p.contains('\t'));
        assert!(
            p.starts_with("a\\u{0}\\u{1}") && p.ends_with("\\u{9f}b"),
            "{p}"
        );
    }

    #[test]
    fn escape_sequences_become_visible_text() {
        assert_eq!(
            printable("x\u{1b}]52;c;aGk=\u{7}y\u{1b}[2J"),
            "x\\u{1b}]52;c;aGk=\\u{7}y\\u{1b}[2J"
        );
        assert_eq!(printable("line\r\nnext\rover"), "line\nnext\\u{d}over");
        assert!(matches!(printable("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(printable("é ✓ 日本"), "é ✓ 日本");
    }

    #[test]
    fn a_field_stays_on_its_line() {
        assert_eq!(
            printable_line("title\n1\tfake\rrow\u{1b}"),
            "title\\u{a}1\\u{9}fake\\u{d}row\\u{1b}"
        );
        assert!(no_control_bytes(&printable_line(&all_controls()), b""));
    }

    #[test]
    fn a_stream_joins_crlf_across_pieces() {
        let mut s = PrintableStream::default();
        let out = [
            s.push("a\r"),
            s.push("\nb\r"),
            s.push("c\u{1b}"),
            s.finish(),
        ]
        .concat();
        assert_eq!(out, "a\nb\\u{d}c\\u{1b}");
        let mut s = PrintableStream::default();
        assert_eq!([s.push("end\r"), s.finish()].concat(), "end\\u{d}");
    }

    #[test]
    fn json_escapes_del_and_c1_and_reads_back_the_same() {
        let v = serde_json::json!({ "text": format!("a{}b", all_controls()) });
        let json = json_for_terminal(serde_json::to_string_pretty(&v).unwrap());
        assert!(no_control_bytes(&json, b"\n"), "{json:?}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }
}
