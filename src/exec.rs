//! The headless frontend: `tether exec` (one turn, reply on stdout, events on
//! stderr, approvals decided by policy and flags alone) and the store's
//! command-line tools (`tether sessions`, `tether rules`).
//!
//! **Invariant:** never reads stdin — a decision nobody can make is a deny.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Subcommand;

use crate::config::{Config, Sources};
use crate::engine::{Assembled, Engine, EventSink, Frontend};
use crate::gate::{Answer, DenyCause, FixedAnswer};
use crate::protocol::{PromptParams, StopReason, ToolStatus, Update, UpdateKind};
use crate::store::{Store, Write};
use crate::term::{self, CliError, CliResult, PrintableStream};
use crate::tools::NoBuffers;

/// The reply goes to stdout, events to stderr, both shown with
/// [`term::printable`]: the model's text never reaches the terminal as
/// control characters.
#[derive(Default)]
struct ExecSink {
    reply: Mutex<Reply>,
    /// The notices printed, so that the turn's error is not printed twice.
    told: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Reply {
    stream: PrintableStream,
    /// Stdout failed (e.g. a closed pipe): nothing more is written there; the
    /// turn goes on, so its work is not cut half-way.
    failed: Option<std::io::Error>,
}

impl ExecSink {
    fn already_told(&self, error: &str) -> bool {
        self.told
            .lock()
            .map(|t| t.iter().any(|n| n.contains(error)))
            .unwrap_or(false)
    }

    fn reply(&self, delta: &str, end: bool) {
        let Ok(mut r) = self.reply.lock() else {
            return;
        };
        if r.failed.is_some() {
            return;
        }
        let mut text = r.stream.push(delta);
        if end {
            text.push_str(&r.stream.finish());
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            r.failed = Some(e);
        }
    }

    fn stdout_error(&self) -> Option<std::io::Error> {
        self.reply.lock().ok().and_then(|mut r| r.failed.take())
    }
}

/// One line of events on stderr; `field` shows a piece of it on one line.
fn event(line: &str) {
    term::eprint_line(line);
}

fn field(s: &str) -> std::borrow::Cow<'_, str> {
    term::printable_line(s)
}

impl EventSink for ExecSink {
    fn emit(&self, u: Update) {
        match u.kind {
            UpdateKind::Text { delta } => self.reply(&delta, false),
            UpdateKind::ToolCall {
                title,
                status,
                output,
                agent,
                ..
            } => {
                let who = agent
                    .map(|a| format!("[{}] ", field(&a)))
                    .unwrap_or_default();
                let title = field(&title);
                match status {
                    ToolStatus::Pending => {}
                    ToolStatus::Running => event(&format!("tether: {who}▶ {title}")),
                    s => {
                        let brief = output
                            .as_deref()
                            .and_then(|o| o.lines().next())
                            .map(|l| crate::text::prefix(l, crate::text::Max::Chars(120)))
                            .unwrap_or("");
                        event(&format!(
                            "tether: {who}{} {title}: {}",
                            status_mark(s),
                            field(brief)
                        ));
                    }
                }
            }
            UpdateKind::Approval {
                status,
                command,
                reason,
                ..
            } => event(&format!(
                "tether: approval {} for `{}`: {}",
                status.as_str(),
                field(&command.unwrap_or_default()),
                field(&reason)
            )),
            UpdateKind::Plan { entries } => {
                for e in entries {
                    event(&format!(
                        "tether: plan [{}] {}",
                        e.status.as_str(),
                        field(&e.content)
                    ));
                }
            }
            UpdateKind::Subagent { goal, status, .. } => event(&format!(
                "tether: subagent {}: {}",
                status.as_str(),
                field(&goal)
            )),
            UpdateKind::Usage { .. } => {}
            UpdateKind::Compaction {
                tokens_before,
                tokens_after,
                window,
                pruned_outputs,
                summarized_messages,
                ..
            } => eprintln!(
                "tether: {}",
                crate::engine::context::compaction_line(
                    tokens_before,
                    tokens_after,
                    window,
                    pruned_outputs,
                    summarized_messages
                )
            ),
            UpdateKind::TurnEnd { stop_reason } => {
                self.reply("", true);
                event(&format!("tether: turn ended: {}", stop_reason.as_str()));
            }
        }
    }

    fn notice(&self, message: String) {
        event(&message);
        if let Ok(mut t) = self.told.lock() {
            t.push(message);
        }
    }
}

fn status_mark(s: ToolStatus) -> &'static str {
    match s {
        ToolStatus::Completed => "✓",
        ToolStatus::Failed => "✗",
        ToolStatus::Denied => "⊘ denied",
        ToolStatus::Cancelled => "⊘ cancelled",
        _ => "·",
    }
}

fn load_config(root: Option<PathBuf>) -> Result<Config, String> {
    let mut sources = Sources::from_process_env();
    sources.workspace_root = root;
    Config::load(&sources).map_err(|e| e.to_string())
}

/// `tether exec "prompt"`.
pub async fn run(
    prompt: String,
    session: Option<String>,
    approve: bool,
    root: Option<PathBuf>,
) -> CliResult {
    let root = match root.map(Ok).unwrap_or_else(std::env::current_dir) {
        Ok(r) => crate::engine::workspace_root(&r),
        Err(e) => {
            return Err(CliError::failed(format!(
                "cannot determine the workspace root: {e}"
            )))
        }
    };
    let sources = Sources {
        workspace_root: Some(root.clone()),
        ..Sources::from_process_env()
    };
    let cfg = Config::load(&sources).map_err(|e| CliError::failed(e.to_string()))?;
    for w in &cfg.warnings {
        event(&format!("tether: {w}"));
    }
    let answer = if approve {
        Answer::AllowOnce
    } else {
        Answer::Deny(DenyCause::NoCapability(
            "tether exec has nobody to ask, so it was denied (run with --approve to allow what would ask)".into(),
        ))
    };
    let Assembled { engine, notices } = Engine::assemble(
        cfg,
        Frontend {
            root,
            env: sources.env,
            asker: Arc::new(FixedAnswer(answer)),
            buffers: Arc::new(NoBuffers),
            tool_sources: Vec::new(),
            store: None,
        },
    );
    for n in notices {
        event(&n);
    }
    let sink = Arc::new(ExecSink::default());
    let handle = engine
        .start_turn(
            PromptParams {
                session_id: session,
                text: prompt,
                context: vec![],
            },
            sink.clone(),
        )
        .await
        .map_err(|e| CliError::Failed {
            message: e.to_string(),
            code: 2,
        })?;
    event(&format!("tether: session {}", handle.session_id));
    let cancel = handle.cancel.clone();
    let result = tokio::select! {
        r = handle.done => r,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            event("tether: cancelling…");
            return Ok(ExitCode::from(130));
        }
    };
    let code = match result {
        Ok(r) => {
            if let Some(e) = r.error.as_deref().filter(|e| !sink.already_told(e)) {
                event(&format!("tether: {e}"));
            }
            match r.stop_reason {
                StopReason::EndTurn => ExitCode::SUCCESS,
                StopReason::Cancelled => ExitCode::from(130),
                StopReason::MaxIterations | StopReason::Error => ExitCode::FAILURE,
            }
        }
        Err(_) => return Err(CliError::failed("the turn ended without a result")),
    };
    // The MCP servers (and what they started) end with the run.
    engine.mcp().stop().await;
    match sink.stdout_error() {
        // A closed stdout (`tether exec … | head`) is no failure of the turn.
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(code),
    }
}

#[derive(Subcommand, Debug)]
pub enum SessionsCmd {
    /// Newest sessions first: id, last update, message count, title.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Print a session: its details, then its messages in order.
    Show { id: String },
    /// Full-text search over messages (every word must occur; `word*` is a
    /// prefix), best match first, with a snippet.
    Search {
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Delete a session with its messages and its subagents' sessions.
    Delete { id: String },
    /// Print everything stored about a session as JSON.
    Export { id: String },
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// List the stored "Always allow" rules.
    List,
    /// Remove a rule by id.
    Remove { id: i64 },
}

fn open_store() -> Result<Store, CliError> {
    let cfg = load_config(None).map_err(CliError::failed)?;
    let store = open_store_at(&cfg.data_dir);
    if let Some(w) = store.take_warning() {
        return Err(CliError::failed(w));
    }
    Ok(store)
}

/// Opens the store, telling stderr if an unreadable database was moved aside.
fn open_store_at(dir: &std::path::Path) -> Store {
    let store = Store::open(dir);
    if let Some(n) = store.take_notice() {
        event(&n);
    }
    store
}

/// `tether sessions …`. Everything from the store is shown with
/// [`term::printable`] (one-line fields with [`term::printable_line`]);
/// `export` is JSON, escaped by [`term::json_for_terminal`].
pub async fn sessions(action: SessionsCmd) -> CliResult {
    let store = open_store()?;
    let describe = |e: crate::store::StoreError| match e {
        crate::store::StoreError::NoSession(id) => CliError::failed(format!(
            "no session {}; see `tether sessions list`",
            field(&id)
        )),
        e => CliError::failed(e.to_string()),
    };
    let one_line =
        |s: &str| field(&s.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned();
    use std::fmt::Write as _;
    let mut out = String::new();
    match action {
        SessionsCmd::List { limit } => {
            let list = store.list_sessions(None, limit).await.map_err(describe)?;
            if list.is_empty() {
                event("tether: no sessions yet");
            }
            for s in list {
                let sub = if s.parent_id.is_some() { "↳ " } else { "" };
                let plural = if s.message_count == 1 { "" } else { "s" };
                let _ = writeln!(
                    out,
                    "{}\t{}\t{} message{plural}\t{sub}{}",
                    field(&s.id),
                    field(&s.updated_at),
                    s.message_count,
                    field(&s.title)
                );
            }
        }
        SessionsCmd::Search { query, limit } => {
            let query = query.join(" ");
            let found = store
                .list_sessions(Some(query.clone()), limit)
                .await
                .map_err(describe)?;
            if found.is_empty() {
                event(&format!("tether: no session matches \"{}\"", field(&query)));
            }
            for s in found {
                let snippet = one_line(s.snippet.as_deref().unwrap_or(""));
                let _ = writeln!(out, "{}\t{}\t{snippet}", field(&s.id), field(&s.title));
            }
        }
        SessionsCmd::Show { id } => {
            let x = store.export(id).await.map_err(describe)?;
            let s = &x.session;
            let _ = writeln!(out, "Session {}: {}", field(&s.id), field(&s.title));
            let _ = writeln!(
                out,
                "  workspace {} · model {} · {}",
                field(&s.workspace),
                field(&s.model),
                field(&s.status)
            );
            let _ = writeln!(
                out,
                "  created {} · updated {} · tokens {} in / {} out",
                field(&s.created_at),
                field(&s.updated_at),
                s.prompt_tokens,
                s.completion_tokens
            );
            if let Some(p) = &s.parent_id {
                let _ = writeln!(out, "  subagent of {}", field(p));
            }
            if !x.children.is_empty() {
                let _ = writeln!(out, "  subagents: {}", field(&x.children.join(", ")));
            }
            for m in &x.messages {
                let who = match &m.tool_call_id {
                    Some(c) => format!("{} ({})", field(&m.role), field(c)),
                    None => field(&m.role).into_owned(),
                };
                // The message may span lines; `print` shows it safely.
                let _ = writeln!(out, "\n[{}] {who}: {}", field(&m.created_at), m.content);
                for call in m
                    .tool_calls
                    .iter()
                    .flat_map(|v| v.as_array().into_iter().flatten())
                {
                    let name = call.pointer("/function/name").and_then(|v| v.as_str());
                    let args = call.pointer("/function/arguments").and_then(|v| v.as_str());
                    let _ = writeln!(
                        out,
                        "  → {} {}",
                        field(name.unwrap_or("?")),
                        one_line(args.unwrap_or(""))
                    );
                }
            }
        }
        SessionsCmd::Export { id } => {
            let x = store.export(id).await.map_err(describe)?;
            let json =
                serde_json::to_string_pretty(&x).map_err(|e| CliError::failed(e.to_string()))?;
            term::print_raw(&term::json_for_terminal(json + "\n"))?;
            return Ok(ExitCode::SUCCESS);
        }
        SessionsCmd::Delete { id } => {
            let n = store.delete_session(id.clone()).await.map_err(describe)?;
            let id = field(&id);
            match n.saturating_sub(1) {
                0 => {
                    let _ = writeln!(out, "deleted {id}");
                }
                subs => {
                    let _ = writeln!(out, "deleted {id} and {subs} subagent session(s)");
                }
            }
        }
    }
    term::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `tether rules …`.
pub async fn rules(action: RulesCmd) -> CliResult {
    let store = open_store()?;
    let failed = |e: crate::store::StoreError| CliError::failed(e.to_string());
    match action {
        RulesCmd::List => {
            let mut out = String::new();
            for r in store.rules().await.map_err(failed)? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    r.id,
                    r.action.as_str(),
                    r.kind.as_str(),
                    field(&r.created_at),
                    field(&r.pattern)
                ));
            }
            term::print(&out)?;
        }
        RulesCmd::Remove { id } => {
            let exists = store
                .rules()
                .await
                .map_err(failed)?
                .iter()
                .any(|r| r.id == id);
            if !exists {
                return Err(CliError::failed(format!(
                    "no rule {id}; see `tether rules list`"
                )));
            }
            store
                .write(Write::RemoveRule { id })
                .await
                .map_err(failed)?;
            term::print(&format!("removed rule {id}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
