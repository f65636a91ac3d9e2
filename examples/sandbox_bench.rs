//! Wall time the OS sandbox adds to one command: `true` run the way
//! `run_command` runs it (`tether supervise` → bash), sandboxed and not,
//! interleaved, N runs each; prints median, p90 and the difference.
//!
//!     cargo build --release --bin tether --example sandbox_bench
//!     target/release/examples/sandbox_bench [RUNS] [path/to/tether]
//!
//! RUNS defaults to 100; the binary to `tether` beside this example's
//! directory (target/release/tether).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tether::sandbox::{Policy, Sandbox, SandboxConfig};
use tether::tools::command::{spawn_and_wait, Exit, Spec};
use tokio_util::sync::CancellationToken;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let tether = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent()?.parent().map(|d| d.join("tether")))
            .unwrap_or_else(|| PathBuf::from("tether"))
    });
    if !tether.exists() {
        eprintln!(
            "sandbox_bench: no tether binary at {} (build it: cargo build --release --bin tether)",
            tether.display()
        );
        return std::process::ExitCode::from(2);
    }
    let sandbox = match Sandbox::start(&SandboxConfig::default()) {
        Ok(Some(s)) => s,
        Ok(None) => unreachable!("the default mode is workspace-write"),
        Err(e) => {
            eprintln!("sandbox_bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ws = tempfile::tempdir().expect("workspace");
    let tmp = sandbox.session_tmp("bench").expect("session tmp");
    let policy: Policy = sandbox.policy(&[ws.path().to_path_buf()], &tmp);
    let cancel = CancellationToken::new();
    let run = |sandboxed: bool| {
        let spec = Spec {
            command: "true",
            cwd: ws.path(),
            timeout: Duration::from_secs(30),
            output_cap: 32 * 1024,
            drain: Duration::from_millis(2000),
            kill_grace: Duration::from_millis(300),
            remove_env: &[],
            supervisor: Some(&tether),
            progress: None,
            sandbox: sandboxed.then_some((&policy, tmp.as_path())),
        };
        let cancel = &cancel;
        async move {
            let t = Instant::now();
            let f = spawn_and_wait(spec, cancel).await;
            assert_eq!(f.exit, Exit::Code(0), "{}", f.output);
            t.elapsed()
        }
    };
    // Warm up the page cache and the binary.
    for _ in 0..5 {
        run(false).await;
        run(true).await;
    }
    let (mut off, mut on) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        off.push(run(false).await);
        on.push(run(true).await);
    }
    off.sort();
    on.sort();
    let (m_off, m_on) = (percentile(&off, 0.5), percentile(&on, 0.5));
    println!(
        "`true` x {runs} (interleaved), wall per command: off median {:.2} ms p90 {:.2} ms; sandboxed median {:.2} ms p90 {:.2} ms; added by the sandbox (median) {:.3} ms",
        ms(m_off),
        ms(percentile(&off, 0.9)),
        ms(m_on),
        ms(percentile(&on, 0.9)),
        ms(m_on) - ms(m_off)
    );
    println!("kernel: {}", sandbox.support.describe());
    std::process::ExitCode::SUCCESS
}
