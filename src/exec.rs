//! The headless frontend: `tether exec` (one turn, reply on stdout, events on
//! stderr, approvals decided by policy and flags alone) and the store's
//! command-line tools (`tether sessions`, `tether rules`).
//!
//! **Invariant:** never reads stdin — a decision nobody can make is a deny.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use crate::config::{Config, Sources};
use crate::engine::{Engine, EngineParts, EventSink};
use crate::gate::{Answer, DenyCause, FixedAnswer, Gate};
use crate::model::ModelClient;
use crate::protocol::{PromptParams, StopReason, ToolStatus, Update, UpdateKind};
use crate::store::{Store, Write};
use crate::tools::{NoBuffers, Redactor};

/// Logs go to stderr only; stdout belongs to the protocol or the reply.
pub fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Prints a turn for a terminal. Remembers the notices it printed so that
/// the turn's error is not printed a second time at the end.
#[derive(Default)]
struct ExecSink {
    told: std::sync::Mutex<Vec<String>>,
}

impl ExecSink {
    fn already_told(&self, error: &str) -> bool {
        self.told
            .lock()
            .map(|t| t.iter().any(|n| n.contains(error)))
            .unwrap_or(false)
    }
}

impl EventSink for ExecSink {
    fn emit(&self, u: Update) {
        match u.kind {
            UpdateKind::Text { delta } => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(delta.as_bytes());
                let _ = out.flush();
            }
            UpdateKind::ToolCall {
                title,
                status,
                output,
                agent,
                ..
            } => {
                let who = agent.map(|a| format!("[{a}] ")).unwrap_or_default();
                match status {
                    ToolStatus::Pending => {}
                    ToolStatus::Running => eprintln!("tether: {who}▶ {title}"),
                    s => {
                        let brief = output
                            .as_deref()
                            .and_then(|o| o.lines().next())
                            .unwrap_or("")
                            .chars()
                            .take(120)
                            .collect::<String>();
                        eprintln!("tether: {who}{} {title}: {brief}", status_mark(s));
                    }
                }
            }
            UpdateKind::Approval {
                status,
                command,
                reason,
                ..
            } => eprintln!(
                "tether: approval {status:?} for `{}`: {reason}",
                command.unwrap_or_default()
            ),
            UpdateKind::Plan { entries } => {
                for e in entries {
                    eprintln!("tether: plan [{}] {}", e.status, e.content);
                }
            }
            UpdateKind::Subagent { goal, status, .. } => {
                eprintln!("tether: subagent {status}: {goal}")
            }
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
                println!();
                eprintln!("tether: turn ended: {}", stop_reason.as_str());
            }
        }
    }

    fn notice(&self, message: String) {
        eprintln!("{message}");
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
) -> ExitCode {
    init_tracing("warn");
    let root = match root.map(Ok).unwrap_or_else(std::env::current_dir) {
        Ok(r) => crate::tools::normalize(&std::path::absolute(&r).unwrap_or(r)),
        Err(e) => {
            eprintln!("tether: cannot determine the workspace root: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = match load_config(Some(root.clone())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cfg = cfg;
    cfg.tools.supervisor = std::env::current_exe().ok();
    for w in &cfg.warnings {
        eprintln!("tether: {w}");
    }
    let store = open_store_at(&cfg.data_dir);
    let answer = if approve {
        Answer::AllowOnce
    } else {
        Answer::Deny(DenyCause::NoCapability(
            "tether exec has nobody to ask, so it was denied (run with --approve to allow what would ask)".into(),
        ))
    };
    let gate = Gate::new(
        cfg.approval.clone(),
        cfg.delegation.approvals,
        Arc::new(FixedAnswer(answer)),
        store.clone(),
        vec![root.clone()],
    );
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let key = cfg.api_key.as_ref().map(|k| k.expose().to_string());
    let redactor = Redactor::from_env(&env, &key.iter().map(String::as_str).collect::<Vec<_>>());
    let model = ModelClient::from_config(&cfg);
    let engine = Engine::new(EngineParts {
        config: Arc::new(cfg),
        store,
        model,
        gate,
        buffers: Arc::new(NoBuffers),
        root,
        redactor: Arc::new(redactor),
    });
    let sink = Arc::new(ExecSink::default());
    let handle = match engine
        .start_turn(
            PromptParams {
                session_id: session,
                text: prompt,
                context: vec![],
            },
            sink.clone(),
        )
        .await
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("tether: session {}", handle.session_id);
    let cancel = handle.cancel.clone();
    let result = tokio::select! {
        r = handle.done => r,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            eprintln!("tether: cancelling…");
            return ExitCode::from(130);
        }
    };
    match result {
        Ok(r) => {
            if let Some(e) = r.error.as_deref().filter(|e| !sink.already_told(e)) {
                eprintln!("tether: {e}");
            }
            match r.stop_reason {
                StopReason::EndTurn => ExitCode::SUCCESS,
                StopReason::Cancelled => ExitCode::from(130),
                StopReason::MaxIterations | StopReason::Error => ExitCode::FAILURE,
            }
        }
        Err(_) => {
            eprintln!("tether: the turn ended without a result");
            ExitCode::FAILURE
        }
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

fn open_store() -> Result<Store, String> {
    let cfg = load_config(None)?;
    let store = open_store_at(&cfg.data_dir);
    if let Some(w) = store.take_warning() {
        return Err(w);
    }
    Ok(store)
}

/// Opens the store, telling stderr if an unreadable database was moved aside.
fn open_store_at(dir: &std::path::Path) -> Store {
    let store = Store::open(dir);
    if let Some(n) = store.take_notice() {
        eprintln!("{n}");
    }
    store
}

/// `tether sessions …`.
pub async fn sessions(action: SessionsCmd) -> ExitCode {
    init_tracing("warn");
    let store = match open_store() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::FAILURE;
        }
    };
    let describe = |e: crate::store::StoreError| match e {
        crate::store::StoreError::NoSession(id) => {
            format!("no session {id}; see `tether sessions list`")
        }
        e => e.to_string(),
    };
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let r: Result<String, String> = async {
        use std::fmt::Write as _;
        let mut out = String::new();
        match action {
            SessionsCmd::List { limit } => {
                let list = store.list_sessions(None, limit).await.map_err(describe)?;
                if list.is_empty() {
                    eprintln!("tether: no sessions yet");
                }
                for s in list {
                    let sub = if s.parent_id.is_some() { "↳ " } else { "" };
                    let plural = if s.message_count == 1 { "" } else { "s" };
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{} message{plural}\t{sub}{}",
                        s.id, s.updated_at, s.message_count, s.title
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
                    eprintln!("tether: no session matches \"{query}\"");
                }
                for s in found {
                    let snippet = one_line(s.snippet.as_deref().unwrap_or(""));
                    let _ = writeln!(out, "{}\t{}\t{snippet}", s.id, s.title);
                }
            }
            SessionsCmd::Show { id } => {
                let x = store.export(id).await.map_err(describe)?;
                let s = &x.session;
                let _ = writeln!(out, "Session {}: {}", s.id, s.title);
                let _ = writeln!(
                    out,
                    "  workspace {} · model {} · {}",
                    s.workspace, s.model, s.status
                );
                let _ = writeln!(
                    out,
                    "  created {} · updated {} · tokens {} in / {} out",
                    s.created_at, s.updated_at, s.prompt_tokens, s.completion_tokens
                );
                if let Some(p) = &s.parent_id {
                    let _ = writeln!(out, "  subagent of {p}");
                }
                if !x.children.is_empty() {
                    let _ = writeln!(out, "  subagents: {}", x.children.join(", "));
                }
                for m in &x.messages {
                    let who = match &m.tool_call_id {
                        Some(c) => format!("{} ({c})", m.role),
                        None => m.role.clone(),
                    };
                    let _ = writeln!(out, "\n[{}] {who}: {}", m.created_at, m.content);
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
                            name.unwrap_or("?"),
                            one_line(args.unwrap_or(""))
                        );
                    }
                }
            }
            SessionsCmd::Export { id } => {
                let x = store.export(id).await.map_err(describe)?;
                let json = serde_json::to_string_pretty(&x).map_err(|e| e.to_string())?;
                let _ = writeln!(out, "{json}");
            }
            SessionsCmd::Delete { id } => {
                let n = store.delete_session(id.clone()).await.map_err(describe)?;
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
        Ok(out)
    }
    .await;
    match r {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`… | head`) is not worth a complaint.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tether: cannot write to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("tether: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tether rules …`.
pub async fn rules(action: RulesCmd) -> ExitCode {
    init_tracing("warn");
    let store = match open_store() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r: Result<(), String> = async {
        match action {
            RulesCmd::List => {
                for r in store.rules().await.map_err(|e| e.to_string())? {
                    println!("{}\t{}\t{}\t{}", r.id, r.kind, r.created_at, r.pattern);
                }
            }
            RulesCmd::Remove { id } => {
                let exists = store
                    .rules()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|r| r.id == id);
                if !exists {
                    return Err(format!("no rule {id}; see `tether rules list`"));
                }
                store
                    .write(Write::RemoveRule { id })
                    .await
                    .map_err(|e| e.to_string())?;
                println!("removed rule {id}");
            }
        }
        Ok(())
    }
    .await;
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e}");
            ExitCode::FAILURE
        }
    }
}
