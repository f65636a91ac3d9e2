//! Approvals through the editor: `window/showMessageRequest`, one dialog at a
//! time across the whole server, FIFO; identical pending questions (same
//! session, action and cwd) share one answer.
//!
//! A dialog that stops mattering before the person answers — it timed out,
//! its turn was cancelled, or it was answered another way (`tether.approve`,
//! a chat file) — is withdrawn: `$/cancelRequest` goes to the editor for the
//! dialog's request id, and for a timeout or a cancel the person is told with
//! `window/showMessage` that it expired. So the next dialog never opens next
//! to a stale one that still looks answerable. An editor may keep the
//! withdrawn dialog on screen (Helix does): its reply is still awaited by a
//! task of its own, and a choice made in it is told that it did nothing.
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
use crate::protocol::{ApprovalChoice, ApprovalItem};

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
    /// What a person without dialogs is told on a deny (where the policy
    /// was set, and what to change there).
    advice: Arc<super::plain::DenialAdvice>,
    /// Per session, the last line the person must not miss (a deny for want
    /// of a dialog, an expired dialog), repeated at the end of its turn.
    denials: Notes,
}

impl LspAsker {
    /// Starts the queue task. `can_show` is the client's `window.showMessage`
    /// capability.
    pub fn start(
        client: Client,
        can_show: bool,
        chat_sessions: Arc<Mutex<std::collections::HashSet<String>>>,
        advice: Arc<super::plain::DenialAdvice>,
    ) -> Arc<LspAsker> {
        let (tx, rx) = mpsc::unbounded_channel();
        let registry = Arc::new(Mutex::new(HashMap::new()));
        let denials: Notes = Arc::new(Mutex::new(HashMap::new()));
        tokio::spawn(queue_task(
            client.clone(),
            rx,
            registry.clone(),
            denials.clone(),
        ));
        Arc::new(LspAsker {
            tx,
            client,
            can_show,
            chat_sessions,
            seq: std::sync::atomic::AtomicU64::new(0),
            registry,
            advice,
            denials,
        })
    }

    /// The line of the last deny the person must not miss in this session
    /// (no dialog, or an expired one) since the last call, if any.
    pub fn take_denial(&self, session_id: &str) -> Option<String> {
        self.denials.lock().ok()?.remove(session_id)
    }

    /// Whether approvals are asked with a dialog.
    pub fn can_show(&self) -> bool {
        self.can_show
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
            // One line for the message area, true for where the policy was
            // set; the progress reporter repeats it after the turn's end.
            let client = self.client.clone();
            let line = self.advice.status_line(&q.action);
            if let Ok(mut d) = self.denials.lock() {
                d.insert(q.session_id.clone(), line.clone());
            }
            let reason = self.advice.reason.clone();
            return Box::pin(async move {
                client.show_message(MessageType::WARNING, line).await;
                Answer::Deny(DenyCause::NoCapability(reason))
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

/// One line per session that the end of its turn repeats.
type Notes = Arc<Mutex<HashMap<String, String>>>;

async fn queue_task(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Arc<Slot>>,
    registry: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
    notes: Notes,
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
        let answer = show_dialog(&client, &slot, &notes).await;
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
async fn show_dialog(client: &Client, slot: &Slot, notes: &Notes) -> Option<Answer> {
    let q = &slot.question;
    let actions = ApprovalChoice::ALL
        .into_iter()
        .map(|choice| action_item(q, choice))
        .collect();
    let params = ShowMessageRequestParams {
        typ: MessageType::WARNING,
        // Shown by terminal editors too: control characters in a command
        // are made visible, so nothing in it hides from the person deciding.
        message: crate::term::printable(&q.message()).into_owned(),
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
    let mut svc = client.clone();
    let reply = async move {
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
    // The reply is awaited by a task of its own, so that a choice made in a
    // dialog after it was withdrawn (an editor may keep it on screen) is
    // still seen, and the person told that it did nothing.
    let (reply_tx, reply_rx) = oneshot::channel();
    let late: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    {
        let (late, client) = (late.clone(), client.clone());
        tokio::spawn(async move {
            let Ok(r) = tokio::time::timeout(LATE_CHOICE_WINDOW, reply).await else {
                return;
            };
            if let Err(Ok(Some(item))) = reply_tx.send(r) {
                let note = late.lock().ok().and_then(|l| l.clone());
                if let Some(note) = note {
                    let msg = format!(
                        "{note}; {:?} did nothing",
                        crate::tools::first_line(&crate::term::printable_line(&item.title), 20)
                    );
                    client.show_message(MessageType::WARNING, msg).await;
                }
            }
        });
    }
    let too_late = |why: &str| {
        if let Ok(mut l) = late.lock() {
            *l = Some(format!(
                "Tether: too late: `{}` {why}",
                crate::tools::first_line(&crate::term::printable_line(&q.action), 20)
            ));
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(q.timeout, reply_rx) => match r {
            Err(_) => Err(Answer::Deny(DenyCause::TimedOut)),
            Ok(Err(_)) => Ok(Answer::Deny(DenyCause::ClientGone)),
            Ok(Ok(Err(cause))) => Ok(Answer::Deny(cause)),
            Ok(Ok(Ok(None))) => Ok(Answer::Deny(DenyCause::Person)),
            Ok(Ok(Ok(Some(item)))) => Ok(answer_from_item(&item, &q.approval_id)),
        },
        _ = q.cancel.cancelled() => Err(Answer::Deny(DenyCause::Cancelled)),
        _ = slot.answered.cancelled() => {
            too_late("was already answered");
            withdraw(client, &id, None).await;
            return None;
        }
    };
    match outcome {
        Ok(answer) => Some(answer),
        Err(answer) => {
            let why = match &answer {
                Answer::Deny(DenyCause::TimedOut) => {
                    format!("no answer within {} s", q.timeout.as_secs())
                }
                _ => "its turn was cancelled".to_string(),
            };
            too_late("had expired (denied)");
            // One line, for a terminal editor's message area; the end of the
            // turn repeats it (the dialog may still be on screen).
            let told = format!(
                "Tether: approval of `{}` expired: {why}; denied",
                crate::tools::first_line(&crate::term::printable_line(&q.action), 23)
            );
            if let Ok(mut n) = notes.lock() {
                n.insert(q.session_id.clone(), told.clone());
            }
            withdraw(client, &id, Some(told)).await;
            Some(answer)
        }
    }
}

/// How long a withdrawn dialog's late choice is still noticed.
const LATE_CHOICE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

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

/// One button of the dialog: its title and the question's structured fields
/// ([`ApprovalItem`]), so a client need not read the English message.
fn action_item(q: &Question, choice: ApprovalChoice) -> MessageActionItem {
    let item = ApprovalItem {
        title: choice.title().to_string(),
        approval_id: q.approval_id.clone(),
        choice,
        kind: q.kind,
        action: q.action.clone(),
        cwd: q.cwd.display().to_string(),
        reason: q.reason.clone(),
        agent: q.agent.clone(),
    };
    let mut properties = HashMap::new();
    if let Ok(Value::Object(fields)) = serde_json::to_value(&item) {
        for (k, v) in fields {
            let p = match v {
                Value::String(s) => MessageActionItemProperty::String(s),
                Value::Bool(b) => MessageActionItemProperty::Boolean(b),
                Value::Null => continue,
                other => MessageActionItemProperty::Object(other),
            };
            if k != "title" {
                properties.insert(k, p);
            }
        }
    }
    MessageActionItem {
        title: item.title,
        properties,
    }
}

/// Reads the person's answer from the item the editor sent back: by its
/// `choice`, else (a client that dropped the extra properties) by its title.
/// An item for another approval, an unknown choice or title, or a choice and
/// a title that disagree are a deny.
fn answer_from_item(item: &MessageActionItem, approval_id: &str) -> Answer {
    if let Some(MessageActionItemProperty::String(id)) = item.properties.get("approvalId") {
        if id != approval_id {
            tracing::warn!("approval reply for {id} arrived for {approval_id}; treated as Deny");
            return Answer::Deny(DenyCause::ClientError(
                "the editor answered a different approval".into(),
            ));
        }
    }
    let by_title = ApprovalChoice::from_title(&item.title);
    let choice = match item.properties.get("choice") {
        None => by_title,
        Some(MessageActionItemProperty::String(c)) => match ApprovalChoice::parse(c) {
            Some(c) if by_title.is_none_or(|t| t == c) => Some(c),
            Some(c) => {
                tracing::warn!(
                    "approval reply names {:?} and {:?}; treated as Deny",
                    c.as_str(),
                    item.title
                );
                return Answer::Deny(DenyCause::ClientError(format!(
                    "the editor's answer names two actions ({:?} and {:?})",
                    c.as_str(),
                    item.title
                )));
            }
            None => None,
        },
        Some(_) => None,
    };
    match choice {
        Some(ApprovalChoice::AllowOnce) => Answer::AllowOnce,
        Some(ApprovalChoice::AllowSession) => Answer::AllowSession,
        Some(ApprovalChoice::AlwaysAllow) => Answer::AlwaysAllow,
        Some(ApprovalChoice::Deny) => Answer::Deny(DenyCause::Person),
        None => {
            tracing::warn!("unknown approval action {:?}; treated as Deny", item.title);
            Answer::Deny(DenyCause::ClientError(format!(
                "unknown action {:?}",
                item.title
            )))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::ActionKind;
    use std::time::Duration;

    fn question() -> Question {
        Question {
            approval_id: "ap-1".into(),
            session_id: "s".into(),
            agent: Some("subagent 1 of 2: tidy".into()),
            action: "rm -rf build".into(),
            kind: ActionKind::Command,
            cwd: "/w".into(),
            reason: "recursive delete".into(),
            timeout: Duration::from_secs(1),
            cancel: CancellationToken::new(),
        }
    }

    fn item(title: &str, choice: Option<&str>) -> MessageActionItem {
        let mut properties = HashMap::from([(
            "approvalId".to_string(),
            MessageActionItemProperty::String("ap-1".into()),
        )]);
        if let Some(c) = choice {
            properties.insert("choice".into(), MessageActionItemProperty::String(c.into()));
        }
        MessageActionItem {
            title: title.into(),
            properties,
        }
    }

    #[test]
    fn every_button_carries_the_question_structured() {
        let q = question();
        for choice in ApprovalChoice::ALL {
            let v = serde_json::to_value(action_item(&q, choice)).expect("serialize");
            let back: ApprovalItem = serde_json::from_value(v).expect("an ApprovalItem");
            assert_eq!(
                back,
                ApprovalItem {
                    title: choice.title().into(),
                    approval_id: "ap-1".into(),
                    choice,
                    kind: ActionKind::Command,
                    action: "rm -rf build".into(),
                    cwd: "/w".into(),
                    reason: "recursive delete".into(),
                    agent: Some("subagent 1 of 2: tidy".into()),
                }
            );
            // The item sent back is read as the button it is.
            let sent = action_item(&q, choice);
            let expected = match choice {
                ApprovalChoice::AllowOnce => Answer::AllowOnce,
                ApprovalChoice::AllowSession => Answer::AllowSession,
                ApprovalChoice::AlwaysAllow => Answer::AlwaysAllow,
                ApprovalChoice::Deny => Answer::Deny(DenyCause::Person),
            };
            assert_eq!(answer_from_item(&sent, "ap-1"), expected);
        }
        assert_eq!(
            ApprovalChoice::ALL.map(ApprovalChoice::title),
            crate::protocol::APPROVAL_ACTIONS
        );
    }

    #[test]
    fn answers_are_read_by_choice_else_title_and_every_doubt_denies() {
        assert_eq!(
            answer_from_item(&item("Always allow", None), "ap-1"),
            Answer::AlwaysAllow,
            "a client that drops the properties is read by the title"
        );
        assert_eq!(
            answer_from_item(&item("Immer erlauben", Some("always_allow")), "ap-1"),
            Answer::AlwaysAllow,
            "a translated title is read by the choice"
        );
        for (title, choice) in [
            ("Deny", Some("always_allow")),
            ("Allow once", Some("allow_session")),
            ("Allow once", Some("allow_everything")),
            ("Allow all", None),
            ("Allow once", Some("")),
        ] {
            assert!(
                matches!(
                    answer_from_item(&item(title, choice), "ap-1"),
                    Answer::Deny(DenyCause::ClientError(_))
                ),
                "{title} / {choice:?}"
            );
        }
        assert!(matches!(
            answer_from_item(&item("Allow once", Some("allow_once")), "ap-2"),
            Answer::Deny(DenyCause::ClientError(_))
        ));
    }
}
