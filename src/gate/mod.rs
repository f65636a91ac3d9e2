//! The gate: the only way from a tool to a person. It decides whether a
//! command or edit may run: the classifier first (forbidden never runs, safe
//! runs), then what the person already allowed (this session, or always),
//! then the policy, and only then it asks the person through the frontend's
//! [`Asker`].
//!
//! **Architecture invariants:** a [`Gate`] is a value handed to every tool
//! call and subagent (a subagent's gate is its parent's, labelled); there is
//! no global or thread-local way to a person. Every doubt is a deny that both
//! the person (an `approval` update) and the model (the tool result) are told
//! about. Nothing here reads stdin.

pub mod classify;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::config::{ApprovalConfig, ApprovalMode};
pub use crate::protocol::ActionKind;
use crate::protocol::{ApprovalStatus, UpdateKind};
use crate::store::{ApprovalScope, RuleKind, Store, Write};
pub use classify::{Class, Verdict};

/// A question for the person, as the frontend must show it.
#[derive(Debug, Clone)]
pub struct Question {
    pub approval_id: String,
    /// The session whose turn asks (for sharing identical pending questions).
    pub session_id: String,
    /// The subagent that asks, if any ("subagent 2 of 3: <goal>").
    pub agent: Option<String>,
    /// What will run or be written, exactly.
    pub action: String,
    /// A command, a file write or a file read: what an allow given here
    /// applies to.
    pub kind: ActionKind,
    pub cwd: PathBuf,
    /// Why it was flagged.
    pub reason: String,
    /// How long the person has once the question is shown.
    pub timeout: Duration,
    /// Cancelled when the turn is cancelled: the question resolves as denied.
    pub cancel: CancellationToken,
}

impl Question {
    /// The dialog text: what will run, where, why it was flagged, who asks.
    pub fn message(&self) -> String {
        let who = self.agent.as_deref().unwrap_or("the main agent");
        let what = match self.kind {
            ActionKind::Edit => format!("Tether wants to write {}", self.action),
            ActionKind::Read => format!("Tether wants to read {}", self.action),
            ActionKind::Command => format!(
                "Tether wants to run:\n\n    {}\n\nin {}",
                self.action,
                self.cwd.display()
            ),
            ActionKind::Unsandboxed => format!(
                "Run outside the sandbox? Tether wants to run, with your full rights (writes anywhere, network on):\n\n    {}\n\nin {}",
                self.action,
                self.cwd.display()
            ),
            ActionKind::Mcp => match self.action.split_once('/') {
                Some((server, tool)) if !self.action.starts_with("start ") => {
                    format!("MCP server `{server}` wants to run `{tool}`")
                }
                _ => format!("Tether wants to {}", self.action),
            },
        };
        let scope = match self.kind {
            ActionKind::Edit => "apply to this exact path",
            ActionKind::Read => "apply to this directory and below; files with keys or credentials are asked about every time",
            ActionKind::Command => "apply to this exact command",
            ActionKind::Unsandboxed => "apply to this exact command, run outside the sandbox",
            ActionKind::Mcp => "apply to this tool of this server only",
        };
        format!(
            "{what}\n\nWhy it asks: {}\nAsked by: {who}\n\n\"Allow for session\" and \"Always allow\" {scope}.",
            self.reason,
        )
    }
}

/// Why a question was answered with a deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyCause {
    /// The person chose Deny (or dismissed the dialog).
    Person,
    TimedOut,
    /// The editor answered with an error (Helix 25.07: -32601).
    ClientError(String),
    /// The editor cannot show a dialog.
    NoCapability(String),
    Cancelled,
    ClientGone,
}

/// The person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    AllowOnce,
    AllowSession,
    AlwaysAllow,
    Deny(DenyCause),
}

/// The frontend's way to a person. The LSP frontend shows
/// `window/showMessageRequest`; `tether exec` has none.
pub trait Asker: Send + Sync {
    fn ask(&self, q: Question) -> BoxFuture<'static, Answer>;
}

/// An asker for frontends without a person (headless): every question gets
/// the same answer, immediately.
pub struct FixedAnswer(pub Answer);

impl Asker for FixedAnswer {
    fn ask(&self, _q: Question) -> BoxFuture<'static, Answer> {
        let a = self.0.clone();
        Box::pin(async move { a })
    }
}

/// What a tool should do, and what to tell the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied; the text is for the model (and shown to the person).
    Deny(String),
}

/// Where a decision reports to: the turn's event stream.
pub trait ApprovalEvents: Send + Sync {
    fn approval(&self, update: UpdateKind);
    /// Any other update a tool reports on the same stream (the plan).
    fn update(&self, update: UpdateKind) {
        self.approval(update);
    }
}

/// A file a tool is about to touch, resolved the way the kernel will: the
/// gate judges `real`, and names both when a link leads there.
#[derive(Debug, Clone, Copy)]
pub struct FileTouch<'a> {
    /// The path as the model named it (absolute).
    pub named: &'a Path,
    /// Where it really leads: absolute, every link followed.
    pub real: &'a Path,
    /// A symbolic link was followed on the way.
    pub linked: bool,
    /// Hard links of an existing regular file (more than 1: other names,
    /// maybe outside the workspace, share its content).
    pub hard_links: u64,
    /// The target is a directory (`list_dir`, `search`).
    pub is_dir: bool,
}

/// What the gate needs to know about the call that asks.
pub struct AskContext<'a> {
    pub session_id: &'a str,
    pub cwd: &'a Path,
    pub cancel: &'a CancellationToken,
    pub events: &'a dyn ApprovalEvents,
    /// What the stored approval record is redacted with.
    pub redactor: &'a crate::tools::Redactor,
}

struct Shared {
    policy: ApprovalConfig,
    delegation_approvals: ApprovalMode,
    asker: Arc<dyn Asker>,
    store: Store,
    roots: Vec<PathBuf>,
    /// The roots with their links resolved: real paths are judged against these.
    real_roots: Vec<PathBuf>,
    /// The user's home directory (for `~/` in dialogs and dependency caches).
    home: Option<PathBuf>,
    /// Commands and edits allowed "for session", per session, with their kind.
    session_allows: Mutex<HashMap<String, HashSet<(ActionKind, String)>>>,
    /// Directories whose files may be read "for session", per session.
    read_dirs: Mutex<HashMap<String, Vec<PathBuf>>>,
}

/// The gate handed to every tool call. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    shared: Arc<Shared>,
    agent: Option<String>,
}

impl Gate {
    pub fn new(
        policy: ApprovalConfig,
        delegation_approvals: ApprovalMode,
        asker: Arc<dyn Asker>,
        store: Store,
        roots: Vec<PathBuf>,
    ) -> Gate {
        let real_roots = roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .map(|h| std::fs::canonicalize(&h).unwrap_or(h));
        Gate {
            shared: Arc::new(Shared {
                policy,
                delegation_approvals,
                asker,
                store,
                roots,
                real_roots,
                home,
                session_allows: Mutex::new(HashMap::new()),
                read_dirs: Mutex::new(HashMap::new()),
            }),
            agent: None,
        }
    }

    /// The same gate, asking on behalf of a subagent.
    pub fn labelled(&self, agent: impl Into<String>) -> Gate {
        Gate {
            shared: self.shared.clone(),
            agent: Some(agent.into()),
        }
    }

    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.shared.roots
    }

    /// The roots with their links resolved.
    pub fn real_roots(&self) -> &[PathBuf] {
        &self.shared.real_roots
    }

    /// The user's home directory, links resolved.
    pub fn home(&self) -> Option<&Path> {
        self.shared.home.as_deref()
    }

    /// Decides whether `command` may run in `cwd`.
    pub async fn check_command(&self, command: &str, ctx: AskContext<'_>) -> Decision {
        // Off the async workers: a long script takes milliseconds to judge.
        let owned = command.to_string();
        let verdict = tokio::task::spawn_blocking(move || classify::classify_command(&owned))
            .await
            .unwrap_or_else(|e| Verdict {
                class: Class::Ask,
                reason: format!("the command classifier failed ({e})"),
            });
        self.decide(ActionKind::Command, command, verdict, ctx)
            .await
    }

    /// Decides whether `command` may run outside the OS sandbox: always a
    /// question for the person (with the model's `justification` as the
    /// reason, and the classifier's too when it would ask), remembered as
    /// [`ActionKind::Unsandboxed`]; forbidden stays forbidden, and without a
    /// person (policy `deny`, no dialog) it is a deny with the reason.
    pub async fn check_unsandboxed(
        &self,
        command: &str,
        justification: &str,
        ctx: AskContext<'_>,
    ) -> Decision {
        let owned = command.to_string();
        let verdict = tokio::task::spawn_blocking(move || classify::classify_command(&owned))
            .await
            .unwrap_or_else(|e| Verdict {
                class: Class::Ask,
                reason: format!("the command classifier failed ({e})"),
            });
        if verdict.class == Class::Forbidden {
            return self
                .decide(ActionKind::Command, command, verdict, ctx)
                .await;
        }
        let why: String = justification.trim().chars().take(500).collect();
        let mut reason = format!(
            "the OS sandbox stopped it or would stop it, and the model asks to run it outside: \"{why}\""
        );
        if verdict.class == Class::Ask {
            reason.push_str(&format!(
                "; the command also needs approval: {}",
                verdict.reason
            ));
        }
        let verdict = Verdict {
            class: Class::Ask,
            reason,
        };
        self.decide(ActionKind::Unsandboxed, command, verdict, ctx)
            .await
    }

    /// Decides whether an MCP tool may run (`action` is `SERVER/TOOL`) or a
    /// server from the workspace's config may start: the caller judged it
    /// (`verdict`); allows are remembered as [`ActionKind::Mcp`], apart from
    /// commands, edits and reads.
    pub async fn check_mcp(&self, action: &str, verdict: Verdict, ctx: AskContext<'_>) -> Decision {
        self.decide(ActionKind::Mcp, action, verdict, ctx).await
    }

    /// Decides whether a tool may write `path`, judging its text only. The
    /// file tools use [`Gate::check_edit_at`], which judges the real file.
    pub async fn check_edit(&self, path: &Path, ctx: AskContext<'_>) -> Decision {
        let verdict = classify::classify_edit(path, &self.shared.roots);
        let shown = path.display().to_string();
        self.decide(ActionKind::Edit, &shown, verdict, ctx).await
    }

    /// Decides whether a tool may write the file `t` leads to: judged on the
    /// real file (outside the roots, inside `.git` in any case, secrets in any
    /// case, a hard-linked file → ask); a link is named with its target.
    pub async fn check_edit_at(&self, t: &FileTouch<'_>, ctx: AskContext<'_>) -> Decision {
        let mut verdict = classify::classify_edit(t.real, &self.shared.real_roots);
        if verdict.class == Class::Safe && t.hard_links > 1 {
            verdict = Verdict {
                class: Class::Ask,
                reason: format!(
                    "edit of a file with {} hard links: other names, possibly outside the workspace, share it ({}). \
                     If allowed, Tether writes a new file under this name and the other names keep the old content",
                    t.hard_links,
                    self.show(t.real)
                ),
            };
        }
        let action = if t.linked {
            verdict.reason = format!(
                "{}; {} leads through a symbolic link to {}",
                verdict.reason,
                self.show(t.named),
                self.show(t.real)
            );
            format!("{} → {}", self.show(t.named), self.show(t.real))
        } else {
            t.named.display().to_string()
        };
        self.decide(ActionKind::Edit, &action, verdict, ctx).await
    }

    /// Decides whether a tool may read the file or directory `t` leads to.
    /// Inside the roots: free. Keys and credentials (anywhere): ask every
    /// time. Dependency caches and system headers/docs: free unless
    /// `read_outside = "deny"`. Elsewhere outside: `approval.read_outside`;
    /// "Allow for session"/"Always allow" cover the directory and below.
    pub async fn check_read(&self, t: &FileTouch<'_>, ctx: AskContext<'_>) -> Decision {
        let place =
            classify::classify_read(t.real, &self.shared.real_roots, self.shared.home.as_deref());
        let shown = if t.linked {
            format!("{} → {}", self.show(t.named), self.show(t.real))
        } else {
            self.show(t.real)
        };
        let scope_dir = if t.is_dir {
            t.real.to_path_buf()
        } else {
            t.real.parent().unwrap_or(t.real).to_path_buf()
        };
        let mode = self.shared.policy.read_outside;
        let reason = match place {
            classify::ReadPlace::Inside => return Decision::Allow,
            classify::ReadPlace::Dependency | classify::ReadPlace::Outside
                if mode == ApprovalMode::Deny =>
            {
                return Decision::Deny(format!(
                    "Denied without asking: `{shown}` is outside the workspace and approval.read_outside = \"deny\". Do not retry it; work with the files inside the workspace or ask the person for what you need."
                ));
            }
            classify::ReadPlace::Dependency => return Decision::Allow,
            classify::ReadPlace::Outside if mode == ApprovalMode::Allow => return Decision::Allow,
            classify::ReadPlace::Outside => {
                if self.read_allowed(ctx.session_id, &scope_dir).await {
                    return Decision::Allow;
                }
                format!("read outside the workspace ({})", scope_dir.display())
            }
            classify::ReadPlace::Secret => {
                "read of a file that holds keys or credentials (asked every time)".to_string()
            }
        };
        let verdict = Verdict {
            class: Class::Ask,
            reason,
        };
        let session_id = ctx.session_id.to_string();
        let (decision, scope) = self
            .decide_scoped(ActionKind::Read, &shown, verdict, ctx)
            .await;
        if decision == Decision::Allow && place == classify::ReadPlace::Outside {
            match scope {
                ApprovalScope::Session => {
                    if let Ok(mut m) = self.shared.read_dirs.lock() {
                        m.entry(session_id).or_default().push(scope_dir);
                    }
                }
                ApprovalScope::Always => self.shared.store.submit(Write::AddRule {
                    action: ActionKind::Read,
                    kind: RuleKind::Dir,
                    pattern: scope_dir.display().to_string(),
                }),
                _ => {}
            }
        }
        decision
    }

    async fn read_allowed(&self, session_id: &str, dir: &Path) -> bool {
        let in_session = self
            .shared
            .read_dirs
            .lock()
            .map(|m| {
                m.get(session_id)
                    .is_some_and(|v| v.iter().any(|d| dir.starts_with(d)))
            })
            .unwrap_or(false);
        if in_session {
            return true;
        }
        match self.shared.store.rules().await {
            Ok(rules) => rules
                .iter()
                .any(|r| r.allows(ActionKind::Read, &dir.display().to_string())),
            Err(_) => false,
        }
    }

    /// A path as the person reads it: relative inside the workspace, `~/`
    /// in the home directory, else absolute.
    fn show(&self, p: &Path) -> String {
        let roots = self.shared.real_roots.iter().chain(&self.shared.roots);
        for r in roots {
            if let Ok(rel) = p.strip_prefix(r) {
                if !rel.as_os_str().is_empty() {
                    return rel.display().to_string();
                }
            }
        }
        if let Some(rel) = self
            .shared
            .home
            .as_deref()
            .and_then(|h| p.strip_prefix(h).ok())
        {
            return format!("~/{}", rel.display());
        }
        p.display().to_string()
    }

    async fn decide(
        &self,
        kind: ActionKind,
        action: &str,
        verdict: Verdict,
        ctx: AskContext<'_>,
    ) -> Decision {
        self.decide_scoped(kind, action, verdict, ctx).await.0
    }

    /// [`Gate::decide`], also saying how far an allow reaches (`once`,
    /// `session`, `always`, or `none`). Reads keep their own memory (by
    /// directory, and never for secrets): their answers are not remembered
    /// as exact actions, and exact allows of commands or edits never let a
    /// read through.
    async fn decide_scoped(
        &self,
        kind: ActionKind,
        action: &str,
        verdict: Verdict,
        ctx: AskContext<'_>,
    ) -> (Decision, ApprovalScope) {
        let remembers = kind != ActionKind::Read;
        match verdict.class {
            Class::Safe => return (Decision::Allow, ApprovalScope::Once),
            Class::Forbidden => {
                return (Decision::Deny(format!(
                    "Refused: `{action}` is forbidden ({}). It never runs under any approval policy. Do not try to run it another way; tell the person what you wanted to do instead.",
                    verdict.reason
                )), ApprovalScope::None)
            }
            Class::Ask => {}
        }
        let reason = verdict.reason;
        if remembers && self.allowed_for_session(ctx.session_id, kind, action) {
            tracing::info!("{kind} allowed for session: {action}");
            return (Decision::Allow, ApprovalScope::Session);
        }
        if remembers && self.allowed_by_rule(kind, action).await {
            tracing::info!("{kind} allowed by a stored rule: {action}");
            return (Decision::Allow, ApprovalScope::Always);
        }
        let mode = if self.agent.is_some() && self.shared.delegation_approvals == ApprovalMode::Deny
        {
            ApprovalMode::Deny
        } else {
            self.shared.policy.mode
        };
        match mode {
            ApprovalMode::Allow => return (Decision::Allow, ApprovalScope::Once),
            ApprovalMode::Deny => {
                let why = if self.agent.is_some()
                    && self.shared.delegation_approvals == ApprovalMode::Deny
                {
                    "delegation.approvals = \"deny\": subagents may not run what needs approval"
                } else {
                    "approval.mode = \"deny\": nothing that needs approval runs"
                };
                return (Decision::Deny(format!(
                    "Denied without asking: `{action}` needs approval ({reason}) and {why}. Do not retry it; find another way or ask the person to run it."
                )), ApprovalScope::None);
            }
            ApprovalMode::Ask => {}
        }

        let approval_id = format!("ap-{}", uuid::Uuid::new_v4().simple());
        let q = Question {
            approval_id: approval_id.clone(),
            session_id: ctx.session_id.to_string(),
            agent: self.agent.clone(),
            action: action.to_string(),
            kind,
            cwd: ctx.cwd.to_path_buf(),
            reason: reason.clone(),
            timeout: Duration::from_secs(self.shared.policy.timeout_secs.max(1)),
            cancel: ctx.cancel.clone(),
        };
        let event = |status: ApprovalStatus, reason: String| UpdateKind::Approval {
            approval_id: approval_id.clone(),
            status,
            command: Some(action.to_string()),
            reason,
            agent: self.agent.clone(),
        };
        // Asked first, announced second: the question is answerable (by id,
        // from a chat file's code action) by the time anyone can see it.
        let fut = self.shared.asker.ask(q);
        ctx.events
            .approval(event(ApprovalStatus::Asked, reason.clone()));
        let answer = {
            tokio::select! {
                a = fut => a,
                _ = ctx.cancel.cancelled() => Answer::Deny(DenyCause::Cancelled),
            }
        };
        let (status, decision, scope, told) = match &answer {
            Answer::AllowOnce => (
                ApprovalStatus::Allowed,
                Decision::Allow,
                ApprovalScope::Once,
                reason.clone(),
            ),
            Answer::AllowSession => {
                if remembers {
                    self.remember_for_session(ctx.session_id, kind, action);
                }
                (
                    ApprovalStatus::Allowed,
                    Decision::Allow,
                    ApprovalScope::Session,
                    reason.clone(),
                )
            }
            Answer::AlwaysAllow => {
                if remembers {
                    self.shared.store.submit(Write::AddRule {
                        action: kind,
                        kind: RuleKind::Exact,
                        pattern: action.to_string(),
                    });
                }
                (
                    ApprovalStatus::Allowed,
                    Decision::Allow,
                    ApprovalScope::Always,
                    reason.clone(),
                )
            }
            Answer::Deny(cause) => {
                let (status, why) = match cause {
                    DenyCause::Person => (ApprovalStatus::Denied, "the person denied it".to_string()),
                    DenyCause::TimedOut => (
                        ApprovalStatus::TimedOut,
                        format!(
                            "nobody answered the approval request within {} s, so it was denied",
                            self.shared.policy.timeout_secs
                        ),
                    ),
                    DenyCause::ClientError(e) => (
                        ApprovalStatus::Denied,
                        format!("the editor could not show the approval request ({e}), so it was denied"),
                    ),
                    DenyCause::NoCapability(e) => (ApprovalStatus::Denied, e.clone()),
                    DenyCause::Cancelled => (
                        ApprovalStatus::Denied,
                        "the turn was cancelled while the approval was pending".to_string(),
                    ),
                    DenyCause::ClientGone => (
                        ApprovalStatus::Denied,
                        "the editor went away before answering".to_string(),
                    ),
                };
                let msg = format!(
                    "Denied: `{action}` ({reason}) was not done because {why}. Do not retry it blindly: choose a safer approach or explain to the person what you need and why."
                );
                (status, Decision::Deny(msg), ApprovalScope::None, why)
            }
        };
        ctx.events.approval(event(status, told));
        self.shared.store.submit(Write::Approval {
            session_id: ctx.session_id.to_string(),
            approval_id: approval_id.clone(),
            request: ctx.redactor.redact(action),
            decision: status,
            scope,
            agent: self.agent.clone(),
        });
        (decision, scope)
    }

    fn allowed_for_session(&self, session_id: &str, kind: ActionKind, action: &str) -> bool {
        self.shared
            .session_allows
            .lock()
            .map(|m| {
                m.get(session_id)
                    .is_some_and(|s| s.contains(&(kind, action.to_string())))
            })
            .unwrap_or(false)
    }

    fn remember_for_session(&self, session_id: &str, kind: ActionKind, action: &str) {
        if let Ok(mut m) = self.shared.session_allows.lock() {
            m.entry(session_id.to_string())
                .or_default()
                .insert((kind, action.to_string()));
        }
    }

    async fn allowed_by_rule(&self, kind: ActionKind, action: &str) -> bool {
        let rules = match self.shared.store.rules().await {
            Ok(r) => r,
            Err(_) => return false,
        };
        rules.iter().any(|r| r.allows(kind, action))
    }
}
