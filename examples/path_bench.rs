//! Cost of the path work every file-tool call now does before it touches a
//! file: resolving the path the way the kernel will (`realpath::resolve`, an
//! `lstat` per component and a `readlink` per link), judging the real path
//! (`classify_read` / `classify_edit`), and opening it with links refused
//! (`open_nofollow`: `openat2` + `RESOLVE_NO_SYMLINKS`).
//!
//! Run: `cargo run --release --example path_bench [iterations]`

use std::hint::black_box;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tether::gate::classify::{classify_edit, classify_read};
use tether::tools::realpath;

fn per_call(iters: u32, mut f: impl FnMut()) -> Duration {
    // Median of 7 rounds of `iters` calls each.
    let mut rounds: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters
        })
        .collect();
    rounds.sort();
    rounds[3]
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_nanos() as f64 / 1000.0)
}

fn main() -> std::io::Result<()> {
    let iters: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::Builder::new()
        .prefix("tether-pathbench-")
        .tempdir()?;
    let root = std::fs::canonicalize(dir.path())?;
    let outside = tempfile::Builder::new()
        .prefix("tether-pathbench-out-")
        .tempdir()?;
    let out = std::fs::canonicalize(outside.path())?;
    std::fs::create_dir_all(root.join("src/engine/turn"))?;
    std::fs::write(root.join("src/engine/turn/mod.rs"), "fn main() {}\n")?;
    std::fs::write(out.join("target.txt"), "x\n")?;
    symlink(root.join("src"), root.join("srclink"))?;
    symlink(out.join("target.txt"), root.join("notes.md"))?;
    let roots = vec![root.clone()];
    let home = std::env::var_os("HOME").map(PathBuf::from);

    let cases: [(&str, PathBuf); 4] = [
        ("inside, 4 components", root.join("src/engine/turn/mod.rs")),
        (
            "inside, through a dir link",
            root.join("srclink/engine/turn/mod.rs"),
        ),
        ("link out of the workspace", root.join("notes.md")),
        (
            "new file, 2 missing components",
            root.join("src/new/dir/f.rs"),
        ),
    ];
    println!("path_bench: {iters} calls × 7 rounds, median per call");
    println!("| path | resolve | + judge (read and edit) | + open (no links) |");
    println!("|---|---|---|---|");
    for (name, p) in &cases {
        let resolve = per_call(iters, || {
            black_box(realpath::resolve(black_box(p)).ok());
        });
        let judged = per_call(iters, || {
            if let Ok(t) = realpath::resolve(black_box(p)) {
                black_box(classify_read(&t.real, &roots, home.as_deref()));
                black_box(classify_edit(&t.real, &roots));
            }
        });
        let opened = per_call(iters, || {
            if let Ok(t) = realpath::resolve(black_box(p)) {
                black_box(classify_read(&t.real, &roots, home.as_deref()));
                if t.file.is_some() {
                    black_box(realpath::open_nofollow(&t.real, libc::O_RDONLY, 0).ok());
                }
            }
        });
        println!(
            "| {name} | {} | {} | {} |",
            us(resolve),
            us(judged),
            us(opened)
        );
    }
    Ok(())
}
