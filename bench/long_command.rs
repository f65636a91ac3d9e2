//! The ~10 KB command the classifier benchmarks use: `examples/classify_bench.rs`
//! and `bench/parser-peers` include this file, so both time the same input.

/// About `target` bytes of ordinary commands joined with `&&`.
pub fn long_command(target: usize) -> String {
    const PARTS: &[&str] = &[
        "cargo build --release",
        "cargo test --workspace -- --nocapture",
        "git status -sb",
        "rg -n 'TODO' src",
        "ls -la target/release",
        "npm run lint",
        "python -m pytest -x tests/",
        "echo \"built $(git rev-parse --short HEAD)\" >> build.log",
        "find . -name '*.rs' | xargs wc -l",
        "make -j4 test",
    ];
    let mut out = String::new();
    let mut i = 0;
    while out.len() < target {
        if !out.is_empty() {
            out.push_str(" && ");
        }
        out.push_str(PARTS[i % PARTS.len()]);
        i += 1;
    }
    out
}
