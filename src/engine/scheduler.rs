//! The tool scheduler for one model response. Calls that cannot interfere run
//! at the same time (reads, searches, commands), up to `max_parallel`; a
//! write waits for earlier calls that touch its path (and for earlier
//! commands, which may touch anything), and a command waits for earlier
//! writes. Results come back in the model's order. Every call ends exactly
//! once in [`Runner::finish`] — run, refused, cancelled, or cut by the batch
//! deadline.
//!
//! The scheduler knows only each call's [`Access`]; what a call is and how it
//! runs is the [`Runner`]'s (the engine's is `engine::calls`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::protocol::ToolStatus;
use crate::tools::{Access, ToolResult};

/// One call as the scheduler sees it.
pub enum Job {
    /// To run once the earlier calls it conflicts with have ended.
    Run(Access),
    /// Already decided (its arguments could not be read): it waits for
    /// nothing and runs nothing.
    Done(ToolResult),
}

/// Runs the calls the scheduler lets start, and hears how each ended.
pub trait Runner: Sync {
    /// Runs call `i` of the batch: every earlier call it conflicts with has
    /// ended and a parallel slot is held. `cancel` is the batch's token.
    fn run<'a>(&'a self, i: usize, cancel: &'a CancellationToken) -> BoxFuture<'a, ToolResult>;
    /// Call `i` ended with `result`; returns what the model gets. Called once
    /// per call, before any call waiting on it starts.
    fn finish(&self, i: usize, result: ToolResult) -> ToolResult;
}

/// How much of the batch may run at once, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_parallel: usize,
    /// Cancels what is unfinished after this many seconds; 0 = no deadline.
    pub deadline_secs: u64,
}

/// Whether call `later` must wait for call `earlier`.
fn conflicts(earlier: &Access, later: &Access) -> bool {
    let overlap = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    match (earlier, later) {
        (Access::Nothing, _) | (_, Access::Nothing) => false,
        (Access::Write(a), Access::Write(b))
        | (Access::Write(a), Access::Read(b))
        | (Access::Read(a), Access::Write(b)) => overlap(a, b),
        (Access::Write(_), Access::Command) | (Access::Command, Access::Write(_)) => true,
        (Access::Read(_), Access::Read(_))
        | (Access::Read(_), Access::Command)
        | (Access::Command, Access::Read(_))
        | (Access::Command, Access::Command) => false,
    }
}

/// Runs one response's calls; returns their results in the model's order.
/// Cancelling `cancel` cancels every call not yet finished.
pub async fn run_batch<R: Runner>(
    jobs: Vec<Job>,
    limits: Limits,
    cancel: &CancellationToken,
    runner: &R,
) -> Vec<ToolResult> {
    // A batch deadline cancels whatever is still unfinished.
    let batch_cancel = cancel.child_token();
    let deadline_secs = limits.deadline_secs;
    let _deadline_guard = if deadline_secs > 0 {
        let t = batch_cancel.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(deadline_secs)).await;
            t.cancel();
        });
        Some(AbortOnDrop(h))
    } else {
        None
    };
    let access: Vec<Option<&Access>> = jobs
        .iter()
        .map(|j| match j {
            Job::Run(a) => Some(a),
            Job::Done(_) => None,
        })
        .collect();
    let limit = Arc::new(Semaphore::new(limits.max_parallel.max(1)));
    let (done_tx, done_rx): (Vec<_>, Vec<_>) = jobs.iter().map(|_| watch::channel(false)).unzip();
    let futs = jobs.iter().enumerate().map(|(i, job)| {
        let deps: Vec<watch::Receiver<bool>> = match access[i] {
            None => Vec::new(),
            Some(mine) => (0..i)
                .filter(|&j| access[j].is_some_and(|a| conflicts(a, mine)))
                .map(|j| done_rx[j].clone())
                .collect(),
        };
        let done = &done_tx[i];
        let limit = limit.clone();
        let batch_cancel = &batch_cancel;
        async move {
            let result = match job {
                Job::Done(r) => r.clone(),
                Job::Run(_) => {
                    for mut d in deps {
                        tokio::select! {
                            _ = d.wait_for(|v| *v) => {}
                            _ = batch_cancel.cancelled() => {}
                        }
                    }
                    let permit = tokio::select! {
                        p = limit.acquire_owned() => p.ok(),
                        _ = batch_cancel.cancelled() => None,
                    };
                    if batch_cancel.is_cancelled() || permit.is_none() {
                        ToolResult::cancelled()
                    } else {
                        let r = runner.run(i, batch_cancel).await;
                        drop(permit);
                        r
                    }
                }
            };
            let result = if result.status == ToolStatus::Cancelled
                && !cancel.is_cancelled()
                && batch_cancel.is_cancelled()
            {
                ToolResult {
                    status: ToolStatus::Cancelled,
                    output: format!(
                        "Cancelled: the batch deadline ({deadline_secs} s) passed before this call finished."
                    ),
                }
            } else {
                result
            };
            let result = runner.finish(i, result);
            let _ = done.send(true);
            result
        }
    });
    join_all(futs).await
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler alone: a scripted runner, no model, no store. Calls
    //! block on signals the test (or other calls) give, so every assertion
    //! follows from the order of events, never from timing.

    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use tokio::sync::Notify;

    #[test]
    fn conflict_rules() {
        let r = |p: &str| Access::Read(PathBuf::from(p));
        let w = |p: &str| Access::Write(PathBuf::from(p));
        assert!(conflicts(&w("/w/a.txt"), &r("/w/a.txt")));
        assert!(conflicts(&r("/w"), &w("/w/a.txt")));
        assert!(!conflicts(&w("/w/a.txt"), &r("/w/b.txt")));
        assert!(!conflicts(&r("/w/a"), &r("/w/a")));
        assert!(!conflicts(&Access::Command, &Access::Command));
        assert!(conflicts(&Access::Command, &w("/w/x")));
        assert!(conflicts(&w("/w/x"), &Access::Command));
        assert!(!conflicts(&Access::Nothing, &w("/w/x")));
    }

    const WAIT: Duration = Duration::from_secs(10);

    /// What call `i` does when run: waits until every call in `after` has
    /// started (or ended), then returns `ok i`; a call in `forever` waits
    /// for its cancel.
    #[derive(Default)]
    struct Script {
        after_started: HashMap<usize, Vec<usize>>,
        after_ended: HashMap<usize, Vec<usize>>,
        forever: Vec<usize>,
        log: Mutex<Vec<String>>,
        changed: Notify,
    }

    impl Script {
        fn log(&self) -> Vec<String> {
            self.log.lock().expect("log").clone()
        }
        fn note(&self, what: String) {
            self.log.lock().expect("log").push(what);
            self.changed.notify_waiters();
        }
        async fn until(&self, what: String) {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.log().contains(&what) {
                    return;
                }
                changed.await;
            }
        }
    }

    impl Runner for Script {
        fn run<'a>(&'a self, i: usize, cancel: &'a CancellationToken) -> BoxFuture<'a, ToolResult> {
            Box::pin(async move {
                self.note(format!("start {i}"));
                for j in self.after_started.get(&i).into_iter().flatten() {
                    self.until(format!("start {j}")).await;
                }
                for j in self.after_ended.get(&i).into_iter().flatten() {
                    self.until(format!("end {j}")).await;
                }
                if self.forever.contains(&i) {
                    cancel.cancelled().await;
                    return ToolResult::cancelled();
                }
                ToolResult::ok(format!("ok {i}"))
            })
        }
        fn finish(&self, i: usize, result: ToolResult) -> ToolResult {
            self.note(format!("end {i}"));
            ToolResult {
                output: format!("{} (finished)", result.output),
                ..result
            }
        }
    }

    fn read(p: &str) -> Job {
        Job::Run(Access::Read(PathBuf::from(p)))
    }
    fn write(p: &str) -> Job {
        Job::Run(Access::Write(PathBuf::from(p)))
    }
    fn command() -> Job {
        Job::Run(Access::Command)
    }
    const WIDE: Limits = Limits {
        max_parallel: 8,
        deadline_secs: 0,
    };

    async fn batch(jobs: Vec<Job>, limits: Limits, script: &Script) -> Vec<ToolResult> {
        let cancel = CancellationToken::new();
        tokio::time::timeout(WAIT, run_batch(jobs, limits, &cancel, script))
            .await
            .unwrap_or_else(|_| panic!("the batch hung; log: {:?}", script.log()))
    }

    fn outputs(results: &[ToolResult]) -> Vec<String> {
        results.iter().map(|r| r.output.clone()).collect()
    }

    #[tokio::test]
    async fn results_come_back_in_model_order_though_later_calls_end_first() {
        // Call 0 ends only after call 2 has ended: all three ran together.
        let script = Script {
            after_ended: HashMap::from([(0, vec![2]), (1, vec![2])]),
            ..Script::default()
        };
        let results = batch(vec![read("/w/a"), command(), read("/w/b")], WIDE, &script).await;
        assert_eq!(
            outputs(&results),
            ["ok 0 (finished)", "ok 1 (finished)", "ok 2 (finished)"]
        );
        let log = script.log();
        let end = |i: usize| log.iter().position(|l| *l == format!("end {i}"));
        assert!(end(2) < end(0) && end(2) < end(1), "{log:?}");
    }

    #[tokio::test]
    async fn reads_and_commands_run_at_the_same_time() {
        // Each call waits until every other has started: only a scheduler
        // that runs them together gets through.
        let script = Script {
            after_started: HashMap::from([
                (0, vec![1, 2, 3]),
                (1, vec![0, 2, 3]),
                (2, vec![0, 1, 3]),
                (3, vec![0, 1, 2]),
            ]),
            ..Script::default()
        };
        let jobs = vec![read("/w/a"), read("/w/a"), command(), command()];
        let results = batch(jobs, WIDE, &script).await;
        assert!(results.iter().all(|r| r.status == ToolStatus::Completed));
    }

    #[tokio::test]
    async fn a_write_waits_for_earlier_calls_on_its_path_and_only_those() {
        // 0 reads a, 1 writes b (independent), 2 writes a (waits for 0),
        // 3 reads a (waits for 2). Call 0 goes on only once 1 has started.
        let script = Script {
            after_started: HashMap::from([(0, vec![1])]),
            ..Script::default()
        };
        let jobs = vec![read("/w/a"), write("/w/b"), write("/w/a"), read("/w/a/x")];
        batch(jobs, WIDE, &script).await;
        let log = script.log();
        let at = |what: &str| {
            log.iter()
                .position(|l| l == what)
                .unwrap_or_else(|| panic!("no {what} in {log:?}"))
        };
        assert!(at("end 0") < at("start 2"), "{log:?}");
        assert!(at("end 2") < at("start 3"), "{log:?}");
    }

    #[tokio::test]
    async fn a_command_and_a_write_wait_for_each_other_in_model_order() {
        let script = Script::default();
        let jobs = vec![command(), write("/w/a"), command()];
        batch(jobs, WIDE, &script).await;
        assert_eq!(
            script.log(),
            ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
        );
    }

    #[tokio::test]
    async fn max_parallel_bounds_how_many_run_at_once() {
        let script = Script::default();
        let one = Limits {
            max_parallel: 1,
            deadline_secs: 0,
        };
        batch(vec![read("/a"), read("/b"), command()], one, &script).await;
        let log = script.log();
        for pair in log.chunks(2) {
            assert_eq!(pair[0].replace("start", "end"), pair[1], "{log:?}");
        }
        // Zero is read as one, not as "never".
        let zero = Limits {
            max_parallel: 0,
            deadline_secs: 0,
        };
        assert_eq!(
            batch(vec![command()], zero, &Script::default()).await.len(),
            1
        );
    }

    #[tokio::test]
    async fn a_refused_call_waits_for_nothing_and_runs_nothing() {
        // Call 0 (a command) goes on only once the refused call has ended.
        let script = Script {
            after_ended: HashMap::from([(0, vec![1])]),
            ..Script::default()
        };
        let jobs = vec![command(), Job::Done(ToolResult::failed("bad arguments"))];
        let results = batch(jobs, WIDE, &script).await;
        assert_eq!(results[1].status, ToolStatus::Failed);
        assert_eq!(results[1].output, "bad arguments (finished)");
        assert!(!script.log().contains(&"start 1".to_string()));
    }

    #[tokio::test]
    async fn cancelling_ends_every_call_and_starts_no_waiting_one() {
        // 0 runs until cancelled; 1 (a write after a command) waits for it.
        let script = Script {
            forever: vec![0],
            ..Script::default()
        };
        let cancel = CancellationToken::new();
        let jobs = vec![command(), write("/w/a"), Job::Done(ToolResult::failed("x"))];
        let run = run_batch(jobs, WIDE, &cancel, &script);
        tokio::pin!(run);
        tokio::select! {
            _ = script.until("start 0".into()) => {}
            _ = &mut run => panic!("the batch ended before it was cancelled"),
        }
        cancel.cancel();
        let results = tokio::time::timeout(WAIT, run)
            .await
            .expect("ends once cancelled");
        let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                ToolStatus::Cancelled,
                ToolStatus::Cancelled,
                ToolStatus::Failed
            ]
        );
        assert!(results[1]
            .output
            .starts_with("Cancelled: the person stopped"));
        let log = script.log();
        assert!(!log.contains(&"start 1".to_string()), "{log:?}");
        for i in 0..3 {
            let ends = log.iter().filter(|l| **l == format!("end {i}")).count();
            assert_eq!(ends, 1, "call {i} ends exactly once: {log:?}");
        }
    }

    #[tokio::test]
    async fn the_deadline_cancels_what_is_unfinished_and_says_so() {
        let script = Script {
            forever: vec![1],
            ..Script::default()
        };
        let limits = Limits {
            max_parallel: 8,
            deadline_secs: 1,
        };
        let results = batch(vec![command(), command(), write("/w/a")], limits, &script).await;
        assert_eq!(results[0].output, "ok 0 (finished)");
        for r in &results[1..] {
            assert_eq!(r.status, ToolStatus::Cancelled);
            assert_eq!(
                r.output,
                "Cancelled: the batch deadline (1 s) passed before this call finished. (finished)"
            );
        }
        assert!(!script.log().contains(&"start 2".to_string()));
    }
}
