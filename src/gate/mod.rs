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
use crate::protocol::{ApprovalStatus, UpdateKind};
use crate::store::{Store, Write};
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
    /// `command` for commands, `edit` for file writes.
    pub kind: &'static str,
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
        let what = if self.kind == "edit" {
            format!("Tether wants to write {}", self.action)
        } else {
            format!(
                "Tether wants to run:\n\n    {}\n\nin {}",
                self.action,
                self.cwd.display()
            )
        };
        format!(
            "{what}\n\nWhy it asks: {}\nAsked by: {who}\n\n\"Allow for session\" and \"Always allow\" apply to this exact {}.",
            self.reason,
            if self.kind == "edit" { "path" } else { "command" }
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
}

/// What the gate needs to know about the call that asks.
pub struct AskContext<'a> {
    pub session_id: &'a str,
    pub cwd: &'a Path,
    pub cancel: &'a CancellationToken,
    pub events: &'a dyn ApprovalEvents,
}

struct Shared {
    policy: ApprovalConfig,
    delegation_approvals: ApprovalMode,
    asker: Arc<dyn Asker>,
    store: Store,
    roots: Vec<PathBuf>,
    /// Commands allowed "for session", per session.
    session_allows: Mutex<HashMap<String, HashSet<String>>>,
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
        Gate {
            shared: Arc::new(Shared {
                policy,
                delegation_approvals,
                asker,
                store,
                roots,
                session_allows: Mutex::new(HashMap::new()),
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
        self.decide("command", command, verdict, ctx).await
    }

    /// Decides whether a tool may write `path`.
    pub async fn check_edit(&self, path: &Path, ctx: AskContext<'_>) -> Decision {
        let verdict = classify::classify_edit(path, &self.shared.roots);
        let shown = path.display().to_string();
        self.decide("edit", &shown, verdict, ctx).await
    }

    async fn decide(
        &self,
        kind: &'static str,
        action: &str,
        verdict: Verdict,
        ctx: AskContext<'_>,
    ) -> Decision {
        match verdict.class {
            Class::Safe => return Decision::Allow,
            Class::Forbidden => {
                return Decision::Deny(format!(
                    "Refused: `{action}` is forbidden ({}). It never runs under any approval policy. Do not try to run it another way; tell the person what you wanted to do instead.",
                    verdict.reason
                ))
            }
            Class::Ask => {}
        }
        let reason = verdict.reason;
        if self.allowed_for_session(ctx.session_id, action) {
            tracing::info!("allowed for session: {action}");
            return Decision::Allow;
        }
        if self.allowed_by_rule(action).await {
            tracing::info!("allowed by a stored rule: {action}");
            return Decision::Allow;
        }
        let mode = if self.agent.is_some() && self.shared.delegation_approvals == ApprovalMode::Deny
        {
            ApprovalMode::Deny
        } else {
            self.shared.policy.mode
        };
        match mode {
            ApprovalMode::Allow => return Decision::Allow,
            ApprovalMode::Deny => {
                let why = if self.agent.is_some()
                    && self.shared.delegation_approvals == ApprovalMode::Deny
                {
                    "delegation.approvals = \"deny\": subagents may not run what needs approval"
                } else {
                    "approval.mode = \"deny\": nothing that needs approval runs"
                };
                return Decision::Deny(format!(
                    "Denied without asking: `{action}` needs approval ({reason}) and {why}. Do not retry it; find another way or ask the person to run it."
                ));
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
        ctx.events
            .approval(event(ApprovalStatus::Asked, reason.clone()));
        let answer = {
            let fut = self.shared.asker.ask(q);
            tokio::select! {
                a = fut => a,
                _ = ctx.cancel.cancelled() => Answer::Deny(DenyCause::Cancelled),
            }
        };
        let (status, decision, scope, told) = match &answer {
            Answer::AllowOnce => (
                ApprovalStatus::Allowed,
                Decision::Allow,
                "once",
                reason.clone(),
            ),
            Answer::AllowSession => {
                self.remember_for_session(ctx.session_id, action);
                (
                    ApprovalStatus::Allowed,
                    Decision::Allow,
                    "session",
                    reason.clone(),
                )
            }
            Answer::AlwaysAllow => {
                self.shared.store.submit(Write::AddRule {
                    kind: "exact".into(),
                    pattern: action.to_string(),
                });
                (
                    ApprovalStatus::Allowed,
                    Decision::Allow,
                    "always",
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
                    "Denied: `{action}` was not run because {why}. Do not retry it blindly: choose a safer approach or explain to the person what you need and why."
                );
                (status, Decision::Deny(msg), "none", why)
            }
        };
        ctx.events.approval(event(status, told));
        self.shared.store.submit(Write::Approval {
            session_id: ctx.session_id.to_string(),
            approval_id: approval_id.clone(),
            request: action.to_string(),
            decision: format!("{status:?}").to_lowercase(),
            scope: scope.to_string(),
            agent: self.agent.clone(),
        });
        decision
    }

    fn allowed_for_session(&self, session_id: &str, action: &str) -> bool {
        self.shared
            .session_allows
            .lock()
            .map(|m| m.get(session_id).is_some_and(|s| s.contains(action)))
            .unwrap_or(false)
    }

    fn remember_for_session(&self, session_id: &str, action: &str) {
        if let Ok(mut m) = self.shared.session_allows.lock() {
            m.entry(session_id.to_string())
                .or_default()
                .insert(action.to_string());
        }
    }

    async fn allowed_by_rule(&self, action: &str) -> bool {
        let rules = match self.shared.store.rules().await {
            Ok(r) => r,
            Err(_) => return false,
        };
        rules.iter().any(|r| match r.kind.as_str() {
            "exact" => r.pattern == action,
            "prefix" => {
                action.starts_with(&r.pattern)
                    && (r.pattern.ends_with(' ')
                        || action.len() == r.pattern.len()
                        || action[r.pattern.len()..].starts_with(' '))
            }
            _ => false,
        })
    }
}
