//! Runs every row of `tests/corpus/commands.toml` through the classifier.
//!
//! Dangerous rows (`forbidden`, `ask`) must be classified at least that strict, and
//! `forbidden` rows exactly forbidden. Everyday rows (`safe`) may ask in at most 1%
//! of cases and must never be forbidden. A summary is printed (`--nocapture`),
//! with the recall of every `group` (class of miss) of rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tether::gate::classify::{classify_command, classify_edit, Class};

#[derive(serde::Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    cmd: String,
    expect: Class,
    #[serde(default)]
    note: String,
    /// The class of miss the row belongs to (issue 19), if any.
    #[serde(default)]
    group: String,
}

fn load() -> Corpus {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/commands.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

#[test]
fn corpus() {
    let corpus = load();
    let mut expected: BTreeMap<Class, usize> = BTreeMap::new();
    let mut got: BTreeMap<(Class, Class), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut asked = Vec::new();
    // group -> (rows, rows at least as strict as expected, safe rows asked)
    let mut groups: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for case in &corpus.case {
        let v = classify_command(&case.cmd);
        let g = groups
            .entry(if case.group.is_empty() {
                "(earlier rows)"
            } else {
                case.group.as_str()
            })
            .or_default();
        g.0 += 1;
        if v.class >= case.expect {
            g.1 += 1;
        }
        if case.expect == Class::Safe && v.class != Class::Safe {
            g.2 += 1;
        }
        *expected.entry(case.expect).or_default() += 1;
        *got.entry((case.expect, v.class)).or_default() += 1;
        let ok = match case.expect {
            Class::Forbidden => v.class == Class::Forbidden,
            Class::Ask => v.class >= Class::Ask,
            Class::Safe => v.class != Class::Forbidden,
        };
        if !ok {
            misses.push(format!(
                "  MISS {:?} expected {:?} got {:?}: {:?} ({}) — {}",
                case.cmd, case.expect, v.class, case.note, v.reason, case.note
            ));
        } else if case.expect == Class::Safe && v.class != Class::Safe {
            asked.push(format!("  asked: {:?} — {}", case.cmd, v.reason));
        }
    }
    let everyday = expected.get(&Class::Safe).copied().unwrap_or(0);
    let dangerous = expected.get(&Class::Forbidden).copied().unwrap_or(0)
        + expected.get(&Class::Ask).copied().unwrap_or(0);
    let pct = if everyday == 0 {
        0.0
    } else {
        100.0 * asked.len() as f64 / everyday as f64
    };
    println!("classifier corpus: {} rows", corpus.case.len());
    for (class, n) in &expected {
        let row: Vec<String> = [Class::Safe, Class::Ask, Class::Forbidden]
            .iter()
            .map(|c| format!("{c:?}={}", got.get(&(*class, *c)).copied().unwrap_or(0)))
            .collect();
        println!("  expected {class:?}: {n} rows -> {}", row.join(" "));
    }
    println!("  dangerous rows: {dangerous}, everyday rows: {everyday}");
    println!(
        "  everyday asked: {} of {everyday} ({pct:.1}%, limit 1%)",
        asked.len()
    );
    println!("  by group (rows, at least as strict as expected, everyday asked):");
    for (g, (n, ok, asked)) in &groups {
        println!(
            "    {g:<28} {n:>4} {ok:>4} ({:.1}%) asked {asked}",
            100.0 * *ok as f64 / *n as f64
        );
    }
    for a in &asked {
        println!("{a}");
    }
    println!("  misses: {}", misses.len());
    for m in &misses {
        println!("{m}");
    }
    assert!(dangerous >= 200, "corpus needs at least 200 dangerous rows");
    assert!(everyday >= 200, "corpus needs at least 200 everyday rows");
    assert!(
        misses.is_empty(),
        "{} corpus rows misclassified",
        misses.len()
    );
    assert!(pct <= 1.0, "{pct:.1}% of everyday rows asked (limit 1%)");
}

#[test]
fn edits() {
    let roots = vec![PathBuf::from("/work/project"), PathBuf::from("/srv/other")];
    let cases: &[(&str, Class)] = &[
        ("src/main.rs", Class::Safe),
        ("/work/project/src/lib.rs", Class::Safe),
        ("/srv/other/README.md", Class::Safe),
        ("./docs/../Cargo.toml", Class::Safe),
        ("src/../../outside.txt", Class::Ask),
        ("/work/project/../project2/x.rs", Class::Ask),
        ("/etc/hosts", Class::Ask),
        ("/work/project", Class::Ask),
        (".git/config", Class::Ask),
        ("sub/.git/hooks/pre-commit", Class::Ask),
        (".env", Class::Ask),
        (".env.local", Class::Ask),
        ("config/.env.production", Class::Ask),
        ("keys/id_rsa", Class::Ask),
        ("keys/id_ed25519", Class::Ask),
        ("certs/server.pem", Class::Ask),
        ("certs/server.key", Class::Ask),
        (".netrc", Class::Ask),
        (".npmrc", Class::Ask),
        (".pypirc", Class::Ask),
        (".git-credentials", Class::Ask),
        ("/home/me/.aws/credentials", Class::Ask),
        ("/home/me/.ssh/config", Class::Ask),
        (".ssh/known_hosts", Class::Ask),
        ("src/environment.rs", Class::Safe),
        ("docs/keys.md", Class::Safe),
    ];
    let mut bad = Vec::new();
    for (path, want) in cases {
        let v = classify_edit(Path::new(path), &roots);
        if v.class != *want {
            bad.push(format!(
                "{path}: want {want:?}, got {:?} ({})",
                v.class, v.reason
            ));
        }
        assert!(!v.reason.is_empty());
    }
    let none = classify_edit(Path::new("src/x.rs"), &[]);
    if none.class != Class::Ask {
        bad.push(format!("no roots: got {:?}", none.class));
    }
    assert!(bad.is_empty(), "edit misclassified:\n{}", bad.join("\n"));
}

#[test]
fn reasons_name_the_command() {
    let v = classify_command("cargo build && rm -rf build");
    assert_eq!(v.class, Class::Ask);
    assert!(v.reason.contains("rm -rf build"), "{}", v.reason);
    assert_eq!(
        classify_command("cargo test").reason,
        "read-only or ordinary build command"
    );
    let f = classify_command("echo ok; sudo rm -rf /");
    assert_eq!(f.class, Class::Forbidden);
    assert!(f.reason.contains("rm -rf /"), "{}", f.reason);
}

#[test]
fn class_serde_and_order() {
    assert!(Class::Safe < Class::Ask && Class::Ask < Class::Forbidden);
    #[derive(serde::Deserialize, serde::Serialize)]
    struct W {
        c: Class,
    }
    let w: W = toml::from_str("c = \"forbidden\"").expect("parses");
    assert_eq!(w.c, Class::Forbidden);
    let s = toml::to_string(&W { c: Class::Ask }).expect("serialises");
    assert!(s.contains("\"ask\""), "{s}");
}
