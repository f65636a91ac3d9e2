use super::*;

fn ok(src: &str) -> Tree {
    let t = parse(src);
    assert!(t.error.is_none(), "{src:?}: {:?}", t.error);
    t
}

fn bad(src: &str) {
    assert!(parse(src).error.is_some(), "{src:?} parsed");
}

fn simple_words(t: &Tree, src: &str) -> Vec<String> {
    let Some(Cmd::Simple { words, .. }) = t
        .list
        .items
        .first()
        .and_then(|i| i.pipelines.first())
        .and_then(|p| p.stages.first())
        .map(|s| &s.cmd)
    else {
        return Vec::new();
    };
    words.iter().map(|w| w.span.of(src).to_string()).collect()
}

#[test]
fn words_end_where_bash_ends_them() {
    let src = "rm -rf\\\n /tmp/x 'a b'\"c\"$d${e}$(f g)`h` <(i) x<(j)";
    let t = ok(src);
    assert_eq!(
        simple_words(&t, src),
        [
            "rm",
            "-rf\\\n",
            "/tmp/x",
            "'a b'\"c\"$d${e}$(f g)`h`",
            "<(i)",
            "x<(j)"
        ]
    );
}

#[test]
fn lists_pipelines_and_compounds_parse() {
    for src in [
        "a && b || c; d & e\n f | g |& h",
        "if a; then b; elif c; then d; else e; fi",
        "while read l; do echo \"$l\"; done < f",
        "for x in a b; do echo $x; done; for ((i=0;i<3;i++)); do :; done",
        "case $1 in a|b) x;; (c) y;& *) z;;& esac",
        ":(){ :|:& };:",
        "function f { g; }; function h() ( i )",
        "[[ $a =~ ^(x|y)$ && -f b ]] && (( i++ ))",
        "( (ls) ); ((ls) && (pwd))",
        "x=1 y+=2 z=(a b) a[1]=c cmd",
        "cat <<EOF | sh\nrm -rf /\nEOF\necho done",
        "cat <<-'E' >f\n\t$(x)\n\tE\n",
        "echo $'it\\'s' $\"x\" ${a:-$(b)} $((1 + $(c))) # comment ) (",
        "a 2>&1 >/dev/null &>log &>>log <>f >|f 3<&0 <<<str",
        "echo é ü → 你好; ls",
    ] {
        ok(src);
    }
}

#[test]
fn broken_scripts_fail() {
    for src in [
        "echo 'x",
        "echo \"x",
        "echo $(x",
        "echo `x",
        "if a; then b",
        "( a",
        "{ a }",
        "a && ",
        "| a",
        "a ;; b",
        "echo ${x",
        "f() g",
        "fi",
        "if then fi",
        "{ }",
        "( )",
        "while true; do done",
        "a | ! b",
        "for i in 1 2 do echo; done",
        "a >",
    ] {
        bad(src);
    }
}

#[test]
fn heredoc_bodies_are_read_after_the_line() {
    let src = "cat <<A <<'B'; echo\nbody $(rm x)\nA\nlit $(y)\nB\nls";
    let t = ok(src);
    let bodies: Vec<&str> = t.heredocs.iter().map(|h| h.body.of(src)).collect();
    assert_eq!(bodies, ["body $(rm x)\n", "lit $(y)\n"]);
    assert!(t
        .heredocs
        .first()
        .is_some_and(|h| h.parts.iter().any(|p| matches!(p, Part::Command(_)))));
    assert!(t.heredocs.get(1).is_some_and(|h| h.parts.is_empty()));
    assert_eq!(t.list.items.len(), 3);
}

#[test]
fn nesting_is_bounded() {
    bad(&"$(".repeat(10_000));
    bad(&"(".repeat(10_000));
    bad(&"\"$(".repeat(10_000));
    ok(&"$(echo ".repeat(20).to_string().add(&")".repeat(20)));
}

trait Add {
    fn add(self, s: &str) -> String;
}
impl Add for String {
    fn add(mut self, s: &str) -> String {
        self.push_str(s);
        self
    }
}

#[test]
fn arithmetic_or_subshell() {
    let t = ok("((ls) && (pwd))");
    assert!(matches!(
        t.list
            .items
            .first()
            .and_then(|i| i.pipelines.first())
            .and_then(|p| p.stages.first())
            .map(|s| &s.cmd),
        Some(Cmd::Subshell(_))
    ));
    let t = ok("(( x = 1 + (2) ))");
    assert!(matches!(
        t.list
            .items
            .first()
            .and_then(|i| i.pipelines.first())
            .and_then(|p| p.stages.first())
            .map(|s| &s.cmd),
        Some(Cmd::Test(_))
    ));
}

/// Scripts whose acceptance is compared with real bash, besides the corpus.
const TRICKY: &[&str] = &[
    "echo ${a:-}}",
    "echo $(( (1+2) * 3 ))",
    "echo $( (ls) )",
    "echo $((ls) )",
    "a=(1 2 3); echo ${a[@]}",
    "a[1+1]=x",
    "echo {a,b}{c,d}",
    "echo \"${x//\\//_}\"",
    "case x in (a|b) ;; esac",
    "case x in a) echo;; b) ;; esac",
    "case x in a) echo; esac",
    "case x in\n a)\n  echo\n  ;;\nesac",
    "if a\nthen\n b\nfi",
    "while :\ndo\n break\ndone",
    "for x\ndo :; done",
    "for x in\ndo :; done",
    "for ((;;)); do break; done",
    "for ((i=0; i<2; i++)) { echo; }",
    "select x in a b; do break; done",
    "function f() { :; }",
    "function f { :; } >/dev/null",
    "f() ( : )",
    "f()\n{\n :\n}",
    "[[ -n $a && ( $b == c || ! -f d ) ]]",
    "[[ $a =~ ^[0-9]+(\\.[0-9]+)?$ ]]",
    "[[ a < b ]]",
    "(( a = 1 ))",
    "((a++)); ((b--))",
    "echo a\\\nb",
    "echo 'a\nb'",
    "echo \"a\nb\"",
    "echo `echo \\`echo a\\``",
    "echo $'\\''",
    "echo $\"hi\"",
    "cat <<'E'\n$(not run)\nE",
    "cat <<E\n$(run)\nE",
    "cat <<E | sh\nls\nE",
    "cat <<-E\n\tls\n\tE",
    "cat <<E; echo\nx\nE\n",
    "cat <<E\nunterminated",
    "cat <<",
    "echo >",
    "echo a >&2 2>&1 &>/dev/null",
    "exec 3<>/tmp/x; exec 3>&-",
    "echo <(ls) >(cat)",
    "diff <(ls a) <(ls b)",
    "x=$(cat <<E\nhi\nE\n)",
    "! ls",
    "time ls",
    "time -p ls | wc",
    "ls | ! wc",
    "ls |& wc",
    "ls &&\nwc",
    "ls ||\n\nwc",
    "ls |\nwc",
    "ls & wc & ",
    "ls ;",
    "; ls",
    "ls ;;",
    "&& ls",
    "ls &&",
    "ls | | wc",
    "{ ls; }",
    "{ls;}",
    "{ ls }",
    "( ls )",
    "()",
    "(ls",
    "ls)",
    "echo $((1+2)",
    "echo ${",
    "echo ${a",
    "echo $(",
    "echo \"",
    "echo '",
    "echo `",
    "echo $'",
    "if; then fi",
    "if a; then; fi",
    "if a; then b; else fi",
    "while; do :; done",
    "until a; do b; done",
    "case in esac",
    "case a in esac",
    "case a esac",
    "function { :; }",
    "f() ls",
    "# only a comment",
    "ls # comment ) ( `",
    "ls#notacomment",
    "echo a#b #c",
    "a=1 b=2",
    "a=",
    "a= ls",
    "a=(",
    "a=(1 2",
    "export A=1 B=\"x y\"",
    "declare -a a=(x y)",
    "echo é ü → 你好",
    "echo 'é' \"ü\" $'\\u00e9'",
    "rm -rf \"$HOME\"/x",
    "sudo -u x bash -c 'rm -rf /tmp/x'",
    "find . -name '*.o' -exec rm {} \\;",
    "find . -name '*.o' -exec rm {} +",
    "xargs -0 rm < list",
    "git log --format='%H %s' | head",
    "echo $$ $! $? $# $@ $* $- $0 $1 ${10}",
    "echo ${#a} ${!a} ${a[*]} ${a:0:2} ${a%%x} ${a/#x/y}",
    "echo \"$(echo \")\")\"",
    "echo \"$(case x in x) echo y;; esac)\"",
    "echo $(case x in (x) echo y;; esac)",
    "coproc ls",
    "coproc",
    "coproc ls -l | cat",
    "coproc x ls",
    "coproc x { ls; }",
    "coproc x (ls)",
    "coproc x if true; then :; fi",
    "coproc x y { ls; }",
    "coproc coproc ls",
    "ls | coproc cat",
    "[ -f x ] && echo",
    "test -f x || echo",
    "echo }",
    "echo {",
    "echo ]]",
    "echo then fi done",
    "then",
    "done",
    "}",
];

/// Scripts where the parser knowingly differs from `bash -n`, and why that is
/// safe.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "for ((i=0; i<2); i++)) { echo; }",
    "bash accepts an arithmetic `for` with an unbalanced `)` and then runs nothing \
     at all (not even later lines); we report a syntax error, so it asks",
)];

/// Deterministic mutations of a script: truncations and one-byte edits at
/// character boundaries, with the shell's special characters as replacements.
fn mutations(src: &str, seed: &mut u64, out: &mut Vec<String>) {
    const SPECIAL: &[char] = &[
        '(', ')', '{', '}', '"', '\'', '`', '$', '|', '&', ';', '<', '>', '\\', '\n', ' ', '#',
    ];
    let bounds: Vec<usize> = src
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(src.len()))
        .collect();
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    };
    for _ in 0..2 {
        let at = bounds.get(next() % bounds.len()).copied().unwrap_or(0);
        let (head, tail) = src.split_at(at);
        out.push(head.to_string());
        let c = SPECIAL.get(next() % SPECIAL.len()).copied().unwrap_or(' ');
        out.push(format!("{head}{c}{tail}"));
        let mut rest = tail.chars();
        rest.next();
        out.push(format!("{head}{}", rest.as_str()));
    }
}

/// `bash -n -c`: does bash accept the script's syntax?
fn bash_accepts(bash: &str, src: &str) -> bool {
    std::process::Command::new(bash)
        .args(["--norc", "--noprofile", "-n", "-c", src])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The parser must read scripts the way bash does: accept what `bash -n`
/// accepts (else everyday commands would ask) and reject what it rejects. Run
/// over the classifier corpus, the cases above and mutations of both.
#[test]
fn agrees_with_bash_on_what_parses() {
    let bash = match std::env::var("TETHER_BASH") {
        Ok(b) => b,
        Err(_) => "bash".to_string(),
    };
    if std::process::Command::new(&bash)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "bash is needed for this test in CI"
        );
        eprintln!("skipped: no bash");
        return;
    }
    let corpus_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/commands.toml");
    let text = std::fs::read_to_string(corpus_path).unwrap_or_default();
    let corpus: toml::Value = toml::from_str(&text).unwrap_or(toml::Value::Integer(0));
    let mut cases: Vec<String> = corpus
        .get("case")
        .and_then(|c| c.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("cmd")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(cases.len() > 800, "corpus not read from {corpus_path}");
    cases.extend(TRICKY.iter().map(|s| s.to_string()));
    // TETHER_MUTATION_SEED explores other mutations (CI uses the fixed one).
    let mut seed = std::env::var("TETHER_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e7e_u64);
    let mut mutated = Vec::new();
    for c in &cases {
        mutations(c, &mut seed, &mut mutated);
    }
    cases.retain(|c| !c.contains('\0') && !KNOWN_DIFFERENCES.iter().any(|(k, _)| k == c));
    mutated.retain(|c| !c.contains('\0') && !KNOWN_DIFFERENCES.iter().any(|(k, _)| k == c));

    let (exact, left_to_run_time) = disagreements(&bash, &cases);
    let (fuzzy, fuzzy_run_time) = disagreements(&bash, &mutated);
    eprintln!(
        "{} corpus and hand-written scripts compared with {bash} -n: {} disagreements; \
         {} mutations: {} disagreements ({:.2}%); rejected for errors bash -n leaves to \
         run time: {}",
        cases.len(),
        exact.len(),
        mutated.len(),
        fuzzy.len(),
        100.0 * fuzzy.len() as f64 / mutated.len().max(1) as f64,
        left_to_run_time + fuzzy_run_time
    );
    for d in &fuzzy {
        eprintln!("  mutation: {d}");
    }
    assert!(exact.is_empty(), "{}", exact.join("\n"));
    // Mutations reach corners of bash's grammar (a process substitution as a
    // `for` name...); any disagreement is a syntax error on one side, which
    // asks, so they are bounded rather than all mended.
    assert!(
        fuzzy.len() * 200 <= mutated.len(),
        "more than 0.5% of mutations disagree:\n{}",
        fuzzy.join("\n")
    );
}

/// Scripts on which the parser and `bash -n` disagree, and how many the parser
/// rejected for an error bash only finds when it runs them. The cases are
/// split over the machine's cores (one `bash` at a time per worker); the
/// result is in case order, whatever the workers' speed.
fn disagreements(bash: &str, cases: &[String]) -> (Vec<String>, usize) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cases.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| scope.spawn(move || disagreements_in(bash, part)))
            .collect();
        let mut out = Vec::new();
        let mut run_time = 0;
        for h in handles {
            let (d, r) = h.join().expect("a bash comparison worker panicked");
            out.extend(d);
            run_time += r;
        }
        (out, run_time)
    })
}

fn disagreements_in(bash: &str, cases: &[String]) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut run_time = 0;
    for c in cases {
        let error = parse(c).error;
        let ours = error.is_none();
        let theirs = bash_accepts(bash, c);
        // What `bash -n` leaves for run time, where bash then fails (checked
        // by hand, never by running corpus commands); here such scripts ask.
        if !ours
            && theirs
            && error.is_some_and(|e| CHECKED_WHEN_RUN.iter().any(|k| e.starts_with(k)))
        {
            run_time += 1;
            continue;
        }
        if ours != theirs {
            out.push(format!(
                "{} {c:?}",
                if ours {
                    "bash rejects, we accept:"
                } else {
                    "bash accepts, we reject:"
                }
            ));
        }
    }
    (out, run_time)
}
