//! Property tests for the command classifier: no input makes it panic, and a
//! known forbidden command embedded anywhere as a full command is never Safe
//! (and, behind benign words, stays Forbidden).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tether::gate::classify::{classify_command, classify_edit, Class};

/// Forbidden commands without single quotes (so they also fit in `bash -c '...'`).
const FORBIDDEN: &[&str] = &[
    "rm -rf /",
    "rm -rf ~",
    "rm -rf $HOME",
    "rm -fr /etc/*",
    "sudo rm -rf /usr",
    "\\rm -rf /",
    "mkfs.ext4 /dev/sda",
    "dd if=/dev/zero of=/dev/sda",
    "echo x > /dev/nvme0n1",
    "shutdown -h now",
    "reboot",
    "systemctl poweroff",
    "init 0",
    "kill -9 -1",
    "chmod -R 777 /",
    "mv / /tmp/x",
    "find / -delete",
];

/// Wrappings that keep the command a full command.
const FORMS: &[&str] = &[
    "{junk} ; {cmd}",
    "{junk} && {cmd}",
    "{junk} || {cmd}",
    "{junk} | {cmd}",
    "{junk} & {cmd}",
    "{junk}\n{cmd}",
    "{cmd} ; {junk}",
    "{cmd} && {junk}",
    "echo $({junk} ; {cmd})",
    "echo \"$({cmd})\" {junk}",
    "{junk} `{cmd}`",
    "bash -c '{junk} ; {cmd}'",
    "sh -c \"{cmd}\" && {junk}",
    "( {junk} ; {cmd} )",
    "{ {junk} ; {cmd} ; }",
    "if {junk} ; then {cmd} ; fi",
    "for x in {junk} ; do {cmd} ; done",
    "{junk} ; sudo {cmd}",
    "{junk} ; eval \"{cmd}\"",
];

const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "in", "function", "select", "time", "coproc",
];

fn embed(form: &str, junk: &str, cmd: &str) -> String {
    form.replace("{junk}", junk).replace("{cmd}", cmd)
}

/// Rows of the corpus, as seeds for mutation.
fn corpus_cmds() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/commands.toml");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let value: toml::Value =
        toml::from_str(&text).unwrap_or(toml::Value::Table(Default::default()));
    value
        .get("case")
        .and_then(|c| c.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("cmd").and_then(|c| c.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Duplicate(usize, usize),
}

fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for e in edits {
        let len = chars.len();
        match *e {
            Edit::Insert(i, c) => chars.insert(i % (len + 1), c),
            Edit::Delete(i) if len > 0 => {
                chars.remove(i % len);
            }
            Edit::Duplicate(i, n) if len > 0 => {
                let start = i % len;
                let end = (start + n).min(len);
                let piece: Vec<char> = chars[start..end].to_vec();
                for (k, c) in piece.into_iter().enumerate() {
                    chars.insert(end + k, c);
                }
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    let shellish = prop::sample::select(
        "$(){}[]'\"`\\|&;<>*?~#=+-! \n\t/.abcrmfx0"
            .chars()
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        (any::<usize>(), shellish).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_strings_never_panic(s in any::<String>()) {
        let v = classify_command(&s);
        prop_assert!(!v.reason.is_empty());
    }

    #[test]
    fn shell_soup_never_panics(s in "[a-z0-9$(){}\\[\\]'\"`\\\\|&;<>*?~#=+! \n\t/.:-]{0,160}") {
        let v = classify_command(&s);
        prop_assert!(!v.reason.is_empty());
    }

    #[test]
    fn mutated_corpus_never_panics(pick in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..12)) {
        let seeds = corpus_cmds();
        prop_assume!(!seeds.is_empty());
        let seed = &seeds[pick.index(seeds.len())];
        let s = mutate(seed, &edits);
        let v = classify_command(&s);
        prop_assert!(!v.reason.is_empty());
    }

    #[test]
    fn edits_never_panic(p in "[a-z./~ \\x{0}-\\x{7f}]{0,40}", root in "/[a-z/.]{0,20}") {
        let v = classify_edit(Path::new(&p), &[PathBuf::from(root)]);
        prop_assert!(!v.reason.is_empty());
    }

    /// Behind ordinary words, an embedded forbidden command stays forbidden.
    #[test]
    fn embedded_forbidden_behind_words_is_forbidden(
        junk in "([a-z]{1,5}=[a-z0-9./]{0,5} )?[a-zA-Z0-9_./:,+-]{1,10}( [a-zA-Z0-9_./:,+-]{1,10}){0,3}",
        cmd in prop::sample::select(FORBIDDEN),
        form in prop::sample::select(FORMS),
    ) {
        let first = junk.split(' ').next().unwrap_or("");
        prop_assume!(!RESERVED.contains(&first));
        let script = embed(form, &junk, cmd);
        let v = classify_command(&script);
        prop_assert_eq!(v.class, Class::Forbidden, "{:?} -> {}", script, v.reason);
    }

    /// Behind arbitrary junk (anything that cannot swallow the rest of the line:
    /// no comment, escape or heredoc), an embedded forbidden command is never Safe.
    #[test]
    fn embedded_forbidden_behind_junk_is_never_safe(
        junk in "[^#\\\\<\u{0}]{0,40}",
        cmd in prop::sample::select(FORBIDDEN),
        sep in prop::sample::select(vec![" ; ", " && ", " || ", " | ", "\n", " & "]),
    ) {
        let script = format!("{junk}{sep}{cmd}");
        let v = classify_command(&script);
        prop_assert_ne!(v.class, Class::Safe, "{:?} -> {}", script, v.reason);
    }
}

#[test]
fn pathological_inputs_are_bounded() {
    let deep = "$(".repeat(2000) + &")".repeat(2000);
    assert_ne!(classify_command(&deep).class, Class::Safe);
    let parens = "( ".repeat(5000) + "rm -rf /" + &" )".repeat(5000);
    assert_eq!(classify_command(&parens).class, Class::Forbidden);
    let arith = "((".repeat(5000) + "1" + &"))".repeat(5000);
    let _ = classify_command(&arith);
    let nested = (0..8).fold("rm -rf /".to_string(), |acc, _| {
        format!("bash -c {}", shell_quote(&acc))
    });
    assert_ne!(classify_command(&nested).class, Class::Safe);
    let wrappers = "nice ".repeat(3000) + "rm -rf /";
    assert_ne!(classify_command(&wrappers).class, Class::Safe);
    let xargs = "xargs ".repeat(3000) + "ls";
    let _ = classify_command(&xargs);
    let finds = "find . -exec ".repeat(500) + "rm -rf / \\;";
    assert_ne!(classify_command(&finds).class, Class::Safe);
    let huge = "echo hi && ".repeat(40_000) + "true";
    assert_ne!(classify_command(&huge).class, Class::Forbidden);
    let _ = classify_command("\u{0}\u{1}\u{2}$'\\x00\\u{ffff}\\U0010ffff\\777'");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Nesting is bounded by the parser, not by the stack: the deepest script it
/// reads, deeper ones (asked), and shell strings nested in shell strings all
/// classify on a thread with half of a tokio worker's default stack, in the
/// unoptimised test build.
#[test]
fn deep_nesting_is_bounded_not_a_stack_overflow() {
    let deepest = format!("{}{}", "echo $(".repeat(31), ")".repeat(31));
    let too_deep = format!("{}{}", "echo $(".repeat(40), ")".repeat(40));
    let mut layered = deepest.clone();
    for _ in 0..8 {
        layered = format!("bash -c {}", shell_quote(&layered));
    }
    let cases = vec![
        (deepest, Class::Safe),
        (too_deep, Class::Ask),
        ("$(".repeat(100_000), Class::Ask),
        ("((((((((".repeat(10_000), Class::Ask),
        ("\"$(\"".repeat(20_000), Class::Ask),
        ("${x:-".repeat(20_000), Class::Ask),
        (layered, Class::Ask),
        (
            format!("{}rm -rf /{}", "$(".repeat(20), ")".repeat(20)),
            Class::Forbidden,
        ),
    ];
    let run = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            for (cmd, want) in cases {
                let v = classify_command(&cmd);
                assert_eq!(
                    v.class,
                    want,
                    "{}…: {}",
                    cmd.get(..60).unwrap_or(&cmd),
                    v.reason
                );
            }
        });
    let joined = run.map(|h| h.join());
    assert!(matches!(joined, Ok(Ok(()))), "classification thread failed");
}
