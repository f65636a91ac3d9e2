//! Times `tether::gate::classify::classify_command` on the test corpus and on a
//! ~10 KB command of `&&`-chained ordinary commands.
//!
//! Run: `cargo run --release --example classify_bench [iterations] [filter]`
//! (with a filter, only the 100 KB rows whose name contains it are run, for
//! profiling one of them).

use std::hint::black_box;
use std::time::{Duration, Instant};

use tether::gate::classify::{check_syntax, classify_command, Class};

// The same long command as `bench/parser-peers`.
#[path = "../bench/long_command.rs"]
mod long_command;
use long_command::long_command;
#[path = "../bench/corpus.rs"]
mod corpus;
use corpus::repeat_to;

fn corpus() -> Vec<String> {
    corpus::rows().into_iter().map(|r| r.cmd).collect()
}

fn time<F: FnMut()>(iters: u32, mut f: F) -> Duration {
    f(); // warm up
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

fn main() {
    let iters: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let filter = std::env::args().nth(2);
    if let Some(filter) = &filter {
        return worst_cases(iters, Some(filter));
    }
    let cmds = corpus();
    let long = long_command(10 * 1024);
    let verdict = classify_command(&long);
    assert_eq!(verdict.class, Class::Safe, "{}", verdict.reason);

    let corpus_total = time(iters, || {
        for c in &cmds {
            black_box(classify_command(black_box(c)));
        }
    });
    let per_corpus_cmd =
        corpus_total.as_secs_f64() * 1e6 / (f64::from(iters) * cmds.len().max(1) as f64);

    let long_total = time(iters, || {
        black_box(classify_command(black_box(&long)));
    });
    let per_long = long_total.as_secs_f64() * 1e6 / f64::from(iters);

    let parse_total = time(iters, || {
        let _ = black_box(check_syntax(black_box(&long)));
    });
    let per_parse = parse_total.as_secs_f64() * 1e6 / f64::from(iters);

    println!("iterations: {iters}");
    println!(
        "corpus: {} commands, mean {per_corpus_cmd:.1} µs per command",
        cmds.len()
    );
    println!(
        "long command: {} bytes ({} commands chained with &&), mean {per_long:.1} µs per classification",
        long.len(),
        long.matches(" && ").count() + 1
    );
    println!(
        "long command, parse only: mean {per_parse:.1} µs ({:.0} MB/s)",
        long.len() as f64 / per_parse
    );

    worst_cases(iters, None);
}

/// 100 KB inputs, ordinary and built to be slow (issue 19): the slowest
/// single run of `iters / 10` (at least 5) is reported.
fn worst_cases(iters: u32, filter: Option<&str>) {
    let runs = (iters / 10).max(5);
    let mut vars = String::new();
    for i in 0..3000 {
        vars.push_str(&format!("v{i}=value{i}; "));
    }
    let worst: Vec<(&str, String)> = vec![
        (
            "100 KB of chained ordinary commands",
            long_command(100 * 1024),
        ),
        (
            "100 KB of `cd abcdefgh;` (growing directory)",
            repeat_to("cd abcdefgh; ", 100 * 1024),
        ),
        (
            "252 KB of `cd abcdefgh;` (40 s before v2)",
            repeat_to("cd abcdefgh; ", 252 * 1024),
        ),
        (
            "100 KB: 3,000 variables then nested `bash -c`/`eval`",
            vars + &repeat_to("bash -c 'echo $v1'; eval 'x=1'; ", 70 * 1024),
        ),
        (
            "100 KB of `cd ../x/../y;`",
            repeat_to("cd ../x/../y; ", 100 * 1024),
        ),
        (
            "100 KB of nested `$(echo $(echo …))`",
            repeat_to("$(echo $(echo $(echo x))) ", 100 * 1024),
        ),
        (
            "100 KB of `python3 -c` code",
            repeat_to("python3 -c 'import os; print(1)'; ", 100 * 1024),
        ),
        (
            "100 KB of pipelines",
            repeat_to("a | b | c | d | e | f; ", 100 * 1024),
        ),
        (
            "100 KB of `ln -s` then writes",
            repeat_to("ln -s a b; echo x > b; ", 100 * 1024),
        ),
    ];
    for (name, script) in &worst {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let mut times = Vec::new();
        let mut class = Class::Safe;
        for _ in 0..runs {
            let start = Instant::now();
            class = black_box(classify_command(black_box(script))).class;
            times.push(start.elapsed());
        }
        times.sort();
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        // Under load the slowest run mostly measures the other work; the
        // fastest is the nearest to an idle machine.
        println!(
            "{name}: {} bytes, slowest of {runs}: {:.2} ms, median {:.2} ms, fastest {:.2} ms ({class:?})",
            script.len(),
            ms(times.last()),
            ms(times.get(times.len() / 2)),
            ms(times.first()),
        );
    }
}
