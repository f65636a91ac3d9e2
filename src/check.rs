//! `tether check`: what the approval gate's classifier would say, without an
//! agent, a model or an editor — for a person at a terminal or a CI job.
//!
//! - `tether check [--json] -- COMMAND…` judges one shell command (the words
//!   after `--` joined with spaces, so `tether check -- 'a && b'` is the script
//!   `a && b`);
//! - `tether check [--json] --edit PATH` judges a file write by a tool, with the
//!   workspace root `--root` (default: the current directory);
//! - `tether check --jsonl` reads one JSON object per line from stdin —
//!   `{"command": "…"}` or `{"edit": "PATH"}` — and writes one object per line:
//!   `{"command", "class", "reason"}` (or `{"edit", …}`). A line that is not such
//!   an object gets `{"line": N, "error": "…"}` and the rest carry on; blank
//!   lines are skipped. Reading stdin is right here: this is a batch tool, not an
//!   approval.
//!
//! Exit codes: one command or edit — 0 safe, 3 ask, 4 forbidden; `--jsonl` — 0
//! when every line was judged, 1 when some line was an error (all other lines
//! are still answered); 1 when stdin cannot be read; 2 for a usage error.
//!
//! The classifier is a pure function of its input: nothing here reads the
//! environment or the disk except `--edit`'s notion of the current directory.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::gate::classify::{classify_command, classify_edit, Class, Verdict};

/// Exit code for a single judgement of the given class.
pub fn exit_code(class: Class) -> u8 {
    match class {
        Class::Safe => 0,
        Class::Ask => 3,
        Class::Forbidden => 4,
    }
}

/// What to check, as given on the command line.
pub struct Args {
    pub json: bool,
    pub jsonl: bool,
    pub edit: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub command: Vec<String>,
}

/// Runs `tether check` with the process's stdin/stdout.
pub fn run(args: Args) -> ExitCode {
    let root = match args.root.clone() {
        Some(r) => r,
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.jsonl {
        if args.edit.is_some() || !args.command.is_empty() || args.json {
            eprintln!("tether check: --jsonl reads stdin; give no command, --edit or --json");
            return ExitCode::from(2);
        }
        let stdin = std::io::stdin();
        return match jsonl(stdin.lock(), &mut out, &root) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            // Nobody reads the answers any more (`… | head -1`): success.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tether check: {e}");
                ExitCode::from(1)
            }
        };
    }
    let (key, subject, verdict) = match (&args.edit, args.command.is_empty()) {
        (Some(_), false) => {
            eprintln!("tether check: give either --edit PATH or a command, not both");
            return ExitCode::from(2);
        }
        (Some(path), true) => (
            "edit",
            path.to_string_lossy().into_owned(),
            classify_edit(path, std::slice::from_ref(&root)),
        ),
        (None, true) => {
            eprintln!(
                "tether check: nothing to check (usage: tether check [--json] -- COMMAND…, \
                 tether check --edit PATH, tether check --jsonl < FILE)"
            );
            return ExitCode::from(2);
        }
        (None, false) => {
            let command = args.command.join(" ");
            let v = classify_command(&command);
            ("command", command, v)
        }
    };
    let line = if args.json {
        json_line(key, &subject, &verdict)
    } else {
        human_line(&verdict)
    };
    // A closed stdout (`… | head -0`) still gets the answer: the exit code.
    if let Err(e) = writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Ok(()),
            _ => Err(e),
        })
    {
        eprintln!("tether check: writing the answer: {e}");
        return ExitCode::from(1);
    }
    ExitCode::from(exit_code(verdict.class))
}

/// `class: reason`, with control characters escaped so that a command cannot
/// rewrite the terminal it is shown on.
pub fn human_line(v: &Verdict) -> String {
    format!("{}: {}", class_name(v.class), escape_controls(&v.reason))
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Safe => "safe",
        Class::Ask => "ask",
        Class::Forbidden => "forbidden",
    }
}

/// Control characters (C0, DEL, C1) become `\u{..}` escapes; everything else
/// is kept.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn json_line(key: &str, subject: &str, v: &Verdict) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert(key.into(), subject.into());
    obj.insert("class".into(), class_name(v.class).into());
    obj.insert("reason".into(), v.reason.clone().into());
    serde_json::Value::Object(obj).to_string()
}

fn error_line(line: usize, error: &str) -> String {
    serde_json::json!({ "line": line, "error": error }).to_string()
}

/// Judges one JSON line: `Ok(answer)` or `Err(what is wrong with it)`.
fn judge_line(bytes: &[u8], root: &Path) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or("expected an object with a \"command\" or \"edit\" string")?;
    match (obj.get("command"), obj.get("edit")) {
        (Some(serde_json::Value::String(cmd)), None) => {
            Ok(json_line("command", cmd, &classify_command(cmd)))
        }
        (None, Some(serde_json::Value::String(path))) => {
            let v = classify_edit(Path::new(path), &[root.to_path_buf()]);
            Ok(json_line("edit", path, &v))
        }
        (Some(_), Some(_)) => Err("give \"command\" or \"edit\", not both".into()),
        (Some(_), None) => Err("\"command\" must be a string".into()),
        (None, Some(_)) => Err("\"edit\" must be a string".into()),
        (None, None) => Err("expected an object with a \"command\" or \"edit\" string".into()),
    }
}

/// The `--jsonl` loop over any reader and writer; returns how many lines were
/// errors. Lines are split on `\n` (a trailing `\r` is dropped) and may hold
/// any bytes.
pub fn jsonl(mut input: impl BufRead, out: &mut impl Write, root: &Path) -> std::io::Result<usize> {
    let mut errors = 0;
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        let mut line = buf.as_slice();
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = judge_line(line, root).unwrap_or_else(|e| {
            errors += 1;
            error_line(n, &e)
        });
        writeln!(out, "{answer}")?;
    }
    out.flush()?;
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_get_an_error_and_the_rest_carry_on() {
        let input = b"{\"command\":\"ls\"}\nnot json\n\n{\"command\":1}\n\xff\xfe\n{\"edit\":\".env\"}\r\n{\"command\":\"rm -rf /\"}";
        let mut out = Vec::new();
        let errors = jsonl(&input[..], &mut out, Path::new("/w")).expect("runs");
        assert_eq!(errors, 3);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each answer is JSON"))
            .collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0]["class"], "safe");
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[2]["line"], 4);
        assert_eq!(lines[3]["line"], 5);
        assert_eq!(lines[4]["edit"], ".env");
        assert_eq!(lines[4]["class"], "ask");
        assert_eq!(lines[5]["class"], "forbidden");
        assert_eq!(lines[5]["command"], "rm -rf /");
    }

    #[test]
    fn human_output_escapes_control_characters() {
        let s = escape_controls("a\u{1b}[2Jb\u{7}\u{9b}c\nd");
        assert_eq!(s, "a\\u{1b}[2Jb\\u{7}\\u{9b}c\\nd");
        assert!(!s.chars().any(char::is_control));
    }
}
