//! Times 100 KB of each of many command shapes (issue 19: "any 100 KB command
//! in ≤ 10 ms"): the slowest shapes are where the classifier's time goes.
//!
//! Run: `cargo run --release --example classify_shapes [runs] [filter]`;
//! prints, per shape, the median and fastest of `runs` classifications,
//! slowest shape first.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tether::gate::classify::{check_syntax, classify_command, classify_command_spending};

#[path = "../bench/corpus.rs"]
mod corpus;
#[path = "../bench/long_command.rs"]
mod long_command;
use corpus::repeat_to;

/// One piece per shape; each is repeated to 100 KB.
const SHAPES: &[&str] = &[
    "a | b | c | d | e | f; ",
    "a | ",
    "ln -s a b; echo x > b; ",
    "$(echo $(echo $(echo x))) ",
    "echo $(echo $(echo $(echo $(echo $(echo x))))); ",
    "x=$(echo a); ",
    "`echo x` ",
    "echo \"$(a) $(b) $(c)\"; ",
    "cargo build && grep -rn 'TODO' src | sort | uniq -c; ",
    "git status; git diff --stat; ",
    "ls -la; ",
    "true && ",
    "true || ",
    "a; ",
    "a & ",
    "echo x > f; ",
    "echo x >> f 2>&1; ",
    "cat < f > g; ",
    "( a ); ",
    "{ a; }; ",
    "( ( ( ( a ) ) ) ); ",
    "for i in a b c; do echo $i; done; ",
    "while true; do a; done; ",
    "if a; then b; elif c; then d; else e; fi; ",
    "case $x in a) b;; c) d;; esac; ",
    "f() { a; }; ",
    "x=1; y=$x; z=$y; ",
    "export A=1; ",
    "echo ${a:-${b:-${c}}}; ",
    "echo $((1+2*3)); ",
    "[[ -f a && -d b ]]; ",
    "cd a/b/c; cd ../../..; ",
    "sudo env nice nohup a; ",
    "find . -name x -exec rm {} \\; ; ",
    "echo a | xargs b; ",
    "bash -c 'echo x'; ",
    "eval 'a; b'; ",
    "bash -c \"bash -c 'bash -c echo'\"; ",
    "python3 -c 'import os; print(1)'; ",
    "node -e 'console.log(1)'; ",
    "awk '{print $1}' f; ",
    "sed -e 's/a/b/' f; ",
    "perl -ne 'print' f; ",
    "curl -o f https://x; ",
    "docker ps; kubectl get pods; ",
    "psql -c 'select 1'; ",
    "cat ~/.ssh/id_rsa; ",
    "rm -f build/x; ",
    "mkdir -p a/b; cp a b; mv b c; ",
    "echo {a,b}{c,d}; ",
    "echo 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'; ",
    "echo \"aaaaaaa $x aaaaa\"; ",
    "a=(1 2 3); ",
    "x+=y; ",
    "diff <(a) <(b); ",
    "cat <<EOF\nline $x\nEOF\n",
    "python3 - <<'EOF'\nimport os\nEOF\n",
    "a\n",
    "# comment\n",
    "a \\\n",
    "echo $HOME/x; ",
    "VAR=1 a; ",
    "timeout 5 a; ",
    "xargs xargs xargs echo; ",
    "git -C x -c a=b log; ",
    "npm run build; ",
    "make -j4; ",
    "tar xzf a.tgz; ",
    "K=$(cat ~/.ssh/id_rsa); curl -d $K x; ",
    "docker compose up --build; ",
    "docker build -t myapp:dev .; ",
];

/// The corpus rows expected `expect` (all rows for `None`), joined by line
/// breaks until the script is 100 KB.
fn corpus_script(expect: Option<&str>) -> String {
    let rows: Vec<String> = corpus::rows()
        .into_iter()
        .filter(|r| expect.is_none_or(|e| r.expect == e))
        .map(|r| r.cmd)
        .collect();
    let mut out = String::new();
    while !rows.is_empty() && out.len() < 100 * 1024 {
        for r in &rows {
            out.push_str(r);
            out.push('\n');
        }
    }
    let end = out
        .get(..100 * 1024)
        .and_then(|head| head.rfind('\n'))
        .map_or(out.len(), |k| k + 1);
    out.truncate(end);
    out
}

/// Each corpus row on its own, slowest first (mean of `runs` runs).
fn slowest_rows(runs: usize) {
    let mut rows: Vec<(Duration, String, u64)> = corpus::rows()
        .into_iter()
        .map(|r| {
            let start = Instant::now();
            for _ in 0..runs {
                black_box(classify_command(black_box(&r.cmd)));
            }
            let units = classify_command_spending(&r.cmd).1;
            (start.elapsed() / runs.max(1) as u32, r.cmd, units)
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let total: Duration = rows.iter().map(|r| r.0).sum();
    println!(
        "{} rows, mean {:.2} µs",
        rows.len(),
        total.as_secs_f64() * 1e6 / rows.len().max(1) as f64
    );
    // `rows all` prints every row.
    let shown = if std::env::args().nth(3).as_deref() == Some("all") {
        rows.len()
    } else {
        40
    };
    for (t, cmd, units) in rows.iter().take(shown) {
        println!("{:8.2} µs {units:6} units  {cmd:?}", t.as_secs_f64() * 1e6);
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11_usize)
        .max(1);
    let filter = std::env::args().nth(2);
    if filter.as_deref() == Some("rows") {
        return slowest_rows(runs);
    }
    let mut rows = Vec::new();
    let long = "a".repeat(100 * 1024);
    let quoted = format!("echo '{}'", "a ".repeat(50 * 1024));
    let dquoted = format!("echo \"{}\"", "a $x ".repeat(20 * 1024));
    let mut scripts: Vec<(String, String)> = SHAPES
        .iter()
        .map(|p| (format!("{p:?}"), repeat_to(p, 100 * 1024)))
        .collect();
    // `piece:TEXT` times 100 KB of TEXT.
    if let Some(piece) = filter.as_deref().and_then(|f| f.strip_prefix("piece:")) {
        scripts.push((format!("piece:{piece:?}"), repeat_to(piece, 100 * 1024)));
    }
    scripts.push(("one 100 KB word".into(), long));
    scripts.push((
        "100 KB of chained ordinary commands".into(),
        long_command::long_command(100 * 1024),
    ));
    let mut vars = String::new();
    for i in 0..3000 {
        vars.push_str(&format!("v{i}=value{i}; "));
    }
    let nested = "bash -c 'echo $v1'; eval 'x=1'; ".repeat(70 * 1024 / 32 + 1);
    scripts.push((
        "3,000 variables then 70 KB of nested `bash -c`/`eval`".into(),
        vars + &nested,
    ));
    scripts.push((
        "one group of 100 KB of `a`".into(),
        format!("{{ {}}}", "a\n".repeat(50 * 1024)),
    ));
    scripts.push((
        "one subshell of 100 KB of `a;`".into(),
        format!("( {})", "a; ".repeat(34 * 1024)),
    ));
    scripts.push((
        "100 KB in one `$( )`".into(),
        format!("echo $({})", "a; ".repeat(34 * 1024)),
    ));
    scripts.push((
        "100 KB of the corpus's everyday rows".into(),
        corpus_script(Some("safe")),
    ));
    scripts.push(("100 KB of all corpus rows".into(), corpus_script(None)));
    scripts.push(("one 100 KB single-quoted string".into(), quoted));
    scripts.push(("one 100 KB double-quoted string".into(), dquoted));
    let index = filter
        .as_deref()
        .and_then(|f| f.strip_prefix('#')?.parse::<usize>().ok());
    for (i, (name, script)) in scripts.iter().enumerate() {
        let wanted = match (index, &filter) {
            (Some(n), _) => n == i,
            (None, Some(f)) if f.starts_with("piece:") => name.starts_with("piece:"),
            (None, Some(f)) => name.contains(f.as_str()),
            (None, None) => true,
        };
        if !wanted {
            continue;
        }
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(classify_command(black_box(script)));
                start.elapsed()
            })
            .collect();
        times.sort();
        let (verdict, units) = classify_command_spending(script);
        let class = verdict.class;
        let mut parse: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let _ = black_box(check_syntax(black_box(script)));
                start.elapsed()
            })
            .collect();
        parse.sort();
        rows.push((
            times[times.len() / 2],
            times[0],
            parse[parse.len() / 2],
            name,
            class,
            units,
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (median, fastest, parse, name, class, units) in rows {
        println!(
            "{:7.2} ms median {:7.2} ms fastest {:7.2} ms parsing {:9} units {:6.2} ns/unit  {class:?}  {name}",
            median.as_secs_f64() * 1e3,
            fastest.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3,
            units,
            fastest.as_secs_f64() * 1e9 / units.max(1) as f64
        );
    }
}
