//! Approvals through the editor: `window/showMessageRequest`, one dialog at a
//! time across the whole server, FIFO; identical pending questions (same
//! session, action and cwd) share one answer.
//!
//! A dialog that stops mattering before the person answers — it timed out,
//! its turn was cancelled, or it was answered another way (`tether.approve`,
//! a chat file) — is withdrawn: `$/cancelRequest` goes to the editor for the
//! dialog's request id, and for a timeout or a cancel the person is told with
//! `window/showMessage` that it expired. So the next dialog never opens next
//! to a stale one that still looks answerable.
//!
//! **Invariants:** the dialog is sent from the queue task, never from a
//! request handler (docs/DESIGN.md §2.3); every doubt — timeout, error reply, `null`,
//! a cancelled turn, a client without the capability — is a deny with a cause.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Id, Request};
use tower_lsp_server::ls_types::notification::Cancel;
use tower_lsp_server::ls_types::request::{Request as _, ShowMessageRequest};
use tower_lsp_server::ls_types::{
    CancelParams, MessageActionItem, MessageActionItemProperty, MessageType, NumberOrString,
    ShowMessageRequestParams,
};
use tower_lsp_server::Client;
use tower_service::Service;

use crate::gate::{Answer, Asker, DenyCause, Question};
use crate::protocol::APPROVAL_ACTIONS;

/// One pending question; whoever answers first (dialog or command) wins.
struct Slot {
    /// Order of arrival (for "the oldest pending").
    seq: u64,
    question: Question,
    reply: Mutex<Option<oneshot::Sender<Answer>>>,
    answered: CancellationToken,
    /// When the dialog was sent (for the round-trip measurement).
    sent_at: Mutex<Option<std::time::Instant>>,
}

impl Slot {
    fn answer(&self, a: Answer) -> bool {
        let sender = self.reply.lock().ok().and_then(|mut s| s.take());
        self.answered.cancel();
        match sender {
            Some(s) => s.send(a).is_ok(),
            None => false,
        }
    }

    /// The asking side gave up (turn cancelled) or someone already answered.
    fn is_dead(&self) -> bool {
        self.question.cancel.is_cancelled()
            || self
                .reply
                .lock()
                .map(|s| s.as_ref().is_none_or(|s| s.is_closed()))
                .unwrap_or(true)
    }

    fn key(&self) -> (String, String, std::path::PathBuf) {
        (
            self.question.session_id.clone(),
            self.question.action.clone(),
            self.question.cwd.clone(),
        )
    }
}

/// The LSP frontend's [`Asker`].
pub struct LspAsker {
    tx: mpsc::UnboundedSender<Arc<Slot>>,
    client: Client,
    can_show: bool,
    /// Sessions driven from a chat file: without dialogs, their approvals
    /// are written into the file and answered there.
    chat_sessions: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Arrival counter, for "the oldest pending".
    seq: std::sync::atomic::AtomicU64,
    /// Pending questions by approval id, for `tether.approve` / `tether.deny`.
    registry: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

impl LspAsker {
    /// Starts the queue task. `can_show` is the client's `window.showMessage`
    /// capability.
    pub fn start(
        client: Client,
        can_show: bool,
        chat_sessions: Arc<Mutex<std::collections::HashSet<String>>>,
    ) -> Arc<LspAsker> {
        let (tx, rx) = mpsc::unbounded_channel();
        let registry = Arc::new(Mutex::new(HashMap::new()));
        tokio::spawn(queue_task(client.clone(), rx, registry.clone()));
        Arc::new(LspAsker {
            tx,
            client,
            can_show,
            chat_sessions,
            seq: std::sync::atomic::AtomicU64::new(0),
            registry,
        })
    }

    /// Answers a pending approval by id (`tether.approve` / `tether.deny`).
    pub fn resolve(&self, approval_id: &str, answer: Answer) -> bool {
        let slot = self
            .registry
            .lock()
            .ok()
            .and_then(|mut r| r.remove(approval_id));
        match slot {
            Some(s) => s.answer(answer),
            None => false,
        }
    }

    /// Makes a pending question answerable by id (dialog or command).
    fn register(&self, q: Question) -> (Arc<Slot>, oneshot::Receiver<Answer>) {
        let (reply_tx, reply_rx) = oneshot::channel();
        let id = q.approval_id.clone();
        let slot = Arc::new(Slot {
            seq: self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            question: q,
            reply: Mutex::new(Some(reply_tx)),
            answered: CancellationToken::new(),
            sent_at: Mutex::new(None),
        });
        if let Ok(mut r) = self.registry.lock() {
            r.insert(id, slot.clone());
        }
        (slot, reply_rx)
    }

    /// Ids of questions of `session_id` waiting for an answer.
    pub fn pending_for(&self, session_id: &str) -> Vec<String> {
        self.registry
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(_, s)| s.question.session_id == session_id && !s.is_dead())
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ids of questions waiting for an answer, oldest first.
    pub fn pending_ids(&self) -> Vec<String> {
        let mut slots: Vec<(u64, String)> = self
            .registry
            .lock()
            .map(|r| r.iter().map(|(id, s)| (s.seq, id.clone())).collect())
            .unwrap_or_default();
        slots.sort();
        slots.into_iter().map(|(_, id)| id).collect()
    }
}

impl Asker for LspAsker {
    fn ask(&self, q: Question) -> BoxFuture<'static, Answer> {
        let in_chat = self
            .chat_sessions
            .lock()
            .map(|s| s.contains(&q.session_id))
            .unwrap_or(false);
        if !self.can_show && in_chat {
            // The chat writer shows the request in the file (from the
            // `approval` update); the code actions answer it by id.
            let id = q.approval_id.clone();
            let timeout = q.timeout;
            let cancel = q.cancel.clone();
            let (_slot, reply_rx) = self.register(q);
            let registry = self.registry.clone();
            return Box::pin(async move {
                let a = tokio::select! {
                    a = reply_rx => a.unwrap_or(Answer::Deny(DenyCause::ClientGone)),
                    _ = tokio::time::sleep(timeout) => Answer::Deny(DenyCause::TimedOut),
                    _ = cancel.cancelled() => Answer::Deny(DenyCause::Cancelled),
                };
                if let Ok(mut r) = registry.lock() {
                    r.remove(&id);
                }
                a
            });
        }
        if !self.can_show {
            let client = self.client.clone();
            let why = format!(
                "Tether denied `{}`: this editor cannot show approval dialogs (no window.showMessage capability). \
                 To let such commands run, set approval.mode = \"allow\" in ~/.config/tether/config.toml \
                 (forbidden commands never run), or use a chat file (*.tether.md) to approve in the file.",
                q.action
            );
            return Box::pin(async move {
                client.show_message(MessageType::WARNING, why.clone()).await;
                Answer::Deny(DenyCause::NoCapability(
                    "the editor cannot show approval dialogs (no window.showMessage capability); the person was told how to allow it by policy".into(),
                ))
            });
        }
        let id = q.approval_id.clone();
        let (slot, reply_rx) = self.register(q);
        let timing = slot.clone();
        let sent = self.tx.send(slot).is_ok();
        let registry = self.registry.clone();
        Box::pin(async move {
            let a = if sent {
                reply_rx
                    .await
                    .unwrap_or(Answer::Deny(DenyCause::ClientGone))
            } else {
                Answer::Deny(DenyCause::ClientGone)
            };
            let sent_at = timing.sent_at.lock().ok().and_then(|t| *t);
            if let Some(t) = sent_at {
                tracing::debug!(
                    target: "tether::approval",
                    approval_id = %id,
                    round_trip_us = t.elapsed().as_micros() as u64,
                    "approval round trip (dialog sent → decision handed to the gate)"
                );
            }
            if let Ok(mut r) = registry.lock() {
                r.remove(&id);
            }
            a
        })
    }
}

async fn queue_task(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Arc<Slot>>,
    registry: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
) {
    let mut backlog: VecDeque<Arc<Slot>> = VecDeque::new();
    loop {
        let slot = match backlog.pop_front() {
            Some(s) => s,
            None => match rx.recv().await {
                Some(s) => s,
                None => break,
            },
        };
        if slot.is_dead() {
            continue;
        }
        let answer = show_dialog(&client, &slot).await;
        // Share the answer with identical questions already waiting.
        while let Ok(s) = rx.try_recv() {
            backlog.push_back(s);
        }
        let key = slot.key();
        let shares_answer = !matches!(answer, Some(Answer::Deny(DenyCause::Cancelled)));
        if let Some(a) = answer {
            slot.answer(a.clone());
            if shares_answer {
                backlog.retain(|other| {
                    if other.key() == key && !other.is_dead() {
                        if let Ok(mut r) = registry.lock() {
                            r.remove(&other.question.approval_id);
                        }
                        other.answer(a.clone());
                        false
                    } else {
                        true
                    }
                });
            }
        }
        if let Ok(mut r) = registry.lock() {
            r.remove(&slot.question.approval_id);
        }
    }
}

/// Shows one dialog and waits for its answer, the timeout, a cancel, or an
/// answer given another way (`None`: already answered elsewhere). A dialog
/// left unanswered is withdrawn (see the module doc).
async fn show_dialog(client: &Client, slot: &Slot) -> Option<Answer> {
    let q = &slot.question;
    let actions = APPROVAL_ACTIONS
        .iter()
        .map(|title| MessageActionItem {
            title: title.to_string(),
            properties: HashMap::from([(
                "approvalId".to_string(),
                MessageActionItemProperty::String(q.approval_id.clone()),
            )]),
        })
        .collect();
    let params = ShowMessageRequestParams {
        typ: MessageType::WARNING,
        message: q.message(),
        actions: Some(actions),
    };
    if let Ok(mut t) = slot.sent_at.lock() {
        *t = Some(std::time::Instant::now());
    }
    // Sent by hand rather than with `send_request`, to know its id.
    let id = client.next_request_id();
    let request = Request::build(ShowMessageRequest::METHOD)
        .id(id.clone())
        .params(serde_json::to_value(params).unwrap_or(Value::Null))
        .finish();
    let reply = async {
        let mut svc = client.clone();
        if futures::future::poll_fn(|cx| svc.poll_ready(cx))
            .await
            .is_err()
        {
            return Err(DenyCause::ClientGone);
        }
        match svc.call(request).await {
            Ok(Some(response)) => match response.into_parts().1 {
                Ok(v) => serde_json::from_value::<Option<MessageActionItem>>(v)
                    .map_err(|e| DenyCause::ClientError(format!("unreadable answer: {e}"))),
                Err(e) => Err(DenyCause::ClientError(format!("{} {}", e.code, e.message))),
            },
            Ok(None) | Err(_) => Err(DenyCause::ClientGone),
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(q.timeout, reply) => match r {
            Err(_) => Err(Answer::Deny(DenyCause::TimedOut)),
            Ok(Err(cause)) => Ok(Answer::Deny(cause)),
            Ok(Ok(None)) => Ok(Answer::Deny(DenyCause::Person)),
            Ok(Ok(Some(item))) => Ok(answer_from_item(&item, &q.approval_id)),
        },
        _ = q.cancel.cancelled() => Err(Answer::Deny(DenyCause::Cancelled)),
        _ = slot.answered.cancelled() => {
            withdraw(client, &id, None).await;
            return None;
        }
    };
    match outcome {
        Ok(answer) => Some(answer),
        Err(answer) => {
            let why = match &answer {
                Answer::Deny(DenyCause::TimedOut) => format!(
                    "nobody answered within {} s, so it was denied",
                    q.timeout.as_secs()
                ),
                _ => "its turn was cancelled, so it was denied".to_string(),
            };
            let told = format!(
                "Tether: the approval request for `{}` expired: {why}. Its dialog no longer does anything.",
                q.action
            );
            withdraw(client, &id, Some(told)).await;
            Some(answer)
        }
    }
}

/// Cancels the dialog's request in the editor and, when given, tells the
/// person why.
async fn withdraw(client: &Client, id: &Id, told: Option<String>) {
    let id = match id {
        Id::Number(n) => match i32::try_from(*n) {
            Ok(n) => NumberOrString::Number(n),
            Err(_) => NumberOrString::String(n.to_string()),
        },
        Id::String(s) => NumberOrString::String(s.clone()),
        Id::Null => return,
    };
    tracing::debug!("withdrawing approval dialog {id:?}");
    client
        .send_notification::<Cancel>(CancelParams { id })
        .await;
    if let Some(message) = told {
        client.show_message(MessageType::WARNING, message).await;
    }
}

fn answer_from_item(item: &MessageActionItem, approval_id: &str) -> Answer {
    if let Some(MessageActionItemProperty::String(id)) = item.properties.get("approvalId") {
        if id != approval_id {
            tracing::warn!("approval reply for {id} arrived for {approval_id}; treated as Deny");
            return Answer::Deny(DenyCause::ClientError(
                "the editor answered a different approval".into(),
            ));
        }
    }
    match item.title.as_str() {
        "Allow once" => Answer::AllowOnce,
        "Allow for session" => Answer::AllowSession,
        "Always allow" => Answer::AlwaysAllow,
        "Deny" => Answer::Deny(DenyCause::Person),
        other => {
            tracing::warn!("unknown approval action {other:?}; treated as Deny");
            Answer::Deny(DenyCause::ClientError(format!("unknown action {other:?}")))
        }
    }
}

/// Reads `approvalId` from `tether.approve` / `tether.deny` arguments.
pub fn approval_id_arg(args: &[Value]) -> Option<String> {
    match args.first()? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("approvalId")?.as_str().map(str::to_string),
        _ => None,
    }
}
