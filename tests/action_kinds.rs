//! An approval is for one kind of action. "Allow for session" or "Always
//! allow" on a *write* to the path `/tmp/x.sh > /etc/hosts` must not let the
//! *command* `/tmp/x.sh > /etc/hosts` run without asking (the classifier
//! asks for it), and the other way round. Rules stored before actions had a
//! kind keep what they meant when the database is upgraded.
//!
//! Real parts: the real gate and classifier, a real SQLite store in a
//! temporary directory; only the person is scripted (an asker that records
//! every question and gives a fixed answer).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rusqlite::Connection;
use tether::config::{ApprovalConfig, ApprovalMode};
use tether::gate::{
    ActionKind, Answer, ApprovalEvents, AskContext, Asker, Decision, Gate, Question,
};
use tether::protocol::UpdateKind;
use tether::store::schema::migrate_to;
use tether::store::{RuleKind, Store};
use tether::tools::Redactor;
use tokio_util::sync::CancellationToken;

/// The text that is both a path outside the workspace and a command that
/// writes /etc/hosts: the classifier asks for it either way.
const TEXT: &str = "/tmp/x.sh > /etc/hosts";

/// The person: answers every question with `answer` and remembers it.
struct Person {
    answer: Answer,
    asked: Mutex<Vec<(ActionKind, String)>>,
}

impl Person {
    fn new(answer: Answer) -> Arc<Person> {
        Arc::new(Person {
            answer,
            asked: Mutex::new(Vec::new()),
        })
    }
    fn asked(&self) -> Vec<(ActionKind, String)> {
        self.asked.lock().expect("lock").clone()
    }
}

impl Asker for Person {
    fn ask(&self, q: Question) -> BoxFuture<'static, Answer> {
        self.asked.lock().expect("lock").push((q.kind, q.action));
        let a = self.answer.clone();
        Box::pin(async move { a })
    }
}

struct NoEvents;
impl ApprovalEvents for NoEvents {
    fn approval(&self, _update: UpdateKind) {}
}

fn gate(person: Arc<Person>, store: Store, root: &Path) -> Gate {
    Gate::new(
        ApprovalConfig {
            mode: ApprovalMode::Ask,
            timeout_secs: 5,
            read_outside: ApprovalMode::Ask,
        },
        ApprovalMode::Ask,
        person,
        store,
        vec![root.to_path_buf()],
    )
}

async fn check(gate: &Gate, kind: ActionKind, text: &str, root: &Path) -> Decision {
    let cancel = CancellationToken::new();
    let redactor = Redactor::default();
    let ctx = AskContext {
        session_id: "s1",
        cwd: root,
        cancel: &cancel,
        events: &NoEvents,
        redactor: &redactor,
    };
    match kind {
        ActionKind::Edit => gate.check_edit(&PathBuf::from(text), ctx).await,
        // Reads are remembered by directory, never as exact text (tests/boundary.rs).
        ActionKind::Command | ActionKind::Read => gate.check_command(text, ctx).await,
        // Running it outside the OS sandbox (tests/sandbox.rs).
        ActionKind::Unsandboxed => {
            gate.check_unsandboxed(text, "it writes /etc/hosts", ctx)
                .await
        }
        // An MCP tool asks when its server does not mark it read-only.
        ActionKind::Mcp => {
            let verdict = tether::gate::Verdict {
                class: tether::gate::Class::Ask,
                reason: "not marked read-only".into(),
            };
            gate.check_mcp(text, verdict, ctx).await
        }
    }
}

/// Kinds with the same text that must stay apart: an allowed command never
/// allows an edit, and a command allowed in the sandbox never lets it out.
const PAIRS: [(ActionKind, ActionKind); 4] = [
    (ActionKind::Command, ActionKind::Edit),
    (ActionKind::Edit, ActionKind::Command),
    (ActionKind::Command, ActionKind::Unsandboxed),
    (ActionKind::Unsandboxed, ActionKind::Command),
];

/// An allow given to an MCP tool never lets a command or an edit with the
/// same text through, and the other way round, for the session or always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_for_an_mcp_tool_is_for_that_tool_only() {
    let m = ActionKind::Mcp;
    let pairs = [
        (m, ActionKind::Command),
        (ActionKind::Command, m),
        (m, ActionKind::Edit),
        (ActionKind::Edit, m),
    ];
    for answer in [Answer::AllowSession, Answer::AlwaysAllow] {
        for (first, second) in pairs {
            let ws = tempfile::tempdir().expect("ws");
            let data = tempfile::tempdir().expect("data");
            let store = Store::open(data.path());
            let person = Person::new(answer.clone());
            let g = gate(person.clone(), store.clone(), ws.path());
            assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
            assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
            assert_eq!(
                person.asked().len(),
                1,
                "{answer:?}: the {first} is remembered"
            );
            // A person who now denies: the other kind is asked about and denied.
            let deny = Person::new(Answer::Deny(tether::gate::DenyCause::Person));
            let g2 = gate(deny.clone(), store.clone(), ws.path());
            let again = check(&g2, first, TEXT, ws.path()).await;
            if answer == Answer::AlwaysAllow {
                assert_eq!(again, Decision::Allow, "the stored {first} rule holds");
            }
            assert!(
                matches!(check(&g2, second, TEXT, ws.path()).await, Decision::Deny(_)),
                "{answer:?} on the {first} did not allow the {second}"
            );
            assert_eq!(deny.asked().last(), Some(&(second, TEXT.to_string())));
            assert_eq!(check(&g, second, TEXT, ws.path()).await, Decision::Allow);
            assert_eq!(person.asked().len(), 2, "the {second} was asked about");
            // A tool of another server (or another tool) is its own question.
            if first == m {
                let before = person.asked().len();
                check(&g, m, "/tmp/x.sh > /etc/hosts2", ws.path()).await;
                assert_eq!(person.asked().len(), before + 1);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_for_session_on_one_kind_never_allows_the_other_kind_with_the_same_text() {
    for (first, second) in PAIRS {
        let ws = tempfile::tempdir().expect("ws");
        let data = tempfile::tempdir().expect("data");
        let store = Store::open(data.path());
        // The person allows the first action for the session...
        let allow = Person::new(Answer::AllowSession);
        let g = gate(allow.clone(), store.clone(), ws.path());
        assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
        // ...so the same action again runs without asking...
        assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
        assert_eq!(allow.asked(), vec![(first, TEXT.to_string())]);
        // ...but the other kind with the same text is asked about.
        let asked_before = allow.asked().len();
        assert_eq!(check(&g, second, TEXT, ws.path()).await, Decision::Allow);
        assert_eq!(
            allow.asked()[asked_before..],
            [(second, TEXT.to_string())],
            "allowing the {first} for the session did not allow the {second}"
        );
        // And nothing was stored as a rule.
        assert!(store.rules().await.expect("rules").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_on_one_kind_never_allows_the_other_kind_with_the_same_text() {
    for (first, second) in PAIRS {
        let ws = tempfile::tempdir().expect("ws");
        let data = tempfile::tempdir().expect("data");
        let store = Store::open(data.path());
        let always = Person::new(Answer::AlwaysAllow);
        let g = gate(always.clone(), store.clone(), ws.path());
        assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
        let rules = store.rules().await.expect("rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(
            (rules[0].action, rules[0].kind, rules[0].pattern.as_str()),
            (first, RuleKind::Exact, TEXT)
        );

        // A new server on the same store (a restart): the rule holds for its
        // own kind, and the person who now denies everything is not asked...
        let deny = Person::new(Answer::Deny(tether::gate::DenyCause::Person));
        let g = gate(deny.clone(), Store::open(data.path()), ws.path());
        assert_eq!(check(&g, first, TEXT, ws.path()).await, Decision::Allow);
        assert!(
            deny.asked().is_empty(),
            "the stored rule allowed the {first}"
        );
        // ...but is asked about the other kind, and their Deny holds.
        assert!(matches!(
            check(&g, second, TEXT, ws.path()).await,
            Decision::Deny(_)
        ));
        assert_eq!(deny.asked(), vec![(second, TEXT.to_string())]);
    }
}

/// A database as Tether v3 left it, with the rules and history given.
fn v3_database(dir: &Path, sql: &str) {
    let mut c = Connection::open(dir.join("tether.db")).expect("create db");
    migrate_to(&mut c, 3).expect("v3 schema");
    c.execute_batch(sql).expect("v3 rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_stored_before_actions_had_a_kind_keep_their_meaning() {
    let ws = tempfile::tempdir().expect("ws");
    // The old session's workspace, elsewhere: its files are outside today's
    // workspace, so edits of them are asked about.
    let root = "/old/ws";
    let data = tempfile::tempdir().expect("data");
    // v3 stored every "Always allow" as an `exact` rule on the action's text
    // alone, for commands and edits alike; the approvals and tool runs say
    // which it was, unless the session has been deleted since.
    v3_database(
        data.path(),
        &format!(
            r#"
        INSERT INTO sessions (id, title, workspace, created_ms, updated_ms) VALUES ('s', 't', '{root}', 1, 1);
        INSERT INTO approvals (session_id, approval_id, request, decision, scope, created_ms) VALUES
          ('s', 'a1', 'cargo publish', 'allowed', 'always', 2),
          ('s', 'a2', '{root}/notes.txt', 'allowed', 'always', 3),
          ('s', 'a3', '/srv/x > /etc/hosts', 'allowed', 'always', 4);
        INSERT INTO tool_runs (session_id, tool_call_id, tool, input, status, output_excerpt, duration_ms, created_ms) VALUES
          ('s', 'c1', 'run_command', '{{"command":"cargo publish"}}', 'completed', '', 1, 2),
          ('s', 'c2', 'edit_file', '{{"path":"notes.txt","old":"a","new":"b"}}', 'completed', '', 1, 3),
          ('s', 'c3', 'write_file', '{{"path":"/srv/x > /etc/hosts","content":"x"}}', 'completed', '', 1, 4);
        INSERT INTO allow_rules (id, kind, pattern, created_ms) VALUES
          (1, 'exact', 'cargo publish', 10),
          (2, 'exact', '{root}/notes.txt', 11),
          (3, 'exact', '/srv/x > /etc/hosts', 12),
          (4, 'exact', '{TEXT}', 13),
          (7, 'prefix', 'rm -rf build', 14),
          (8, 'glob', 'rm *', 15);
        "#
        ),
    );
    let store = Store::open(data.path());
    assert_eq!(store.take_warning(), None);
    let rules: Vec<(i64, ActionKind, RuleKind, String)> = store
        .rules()
        .await
        .expect("rules")
        .into_iter()
        .map(|r| (r.id, r.action, r.kind, r.pattern))
        .collect();
    let c = ActionKind::Command;
    let e = ActionKind::Edit;
    let notes = format!("{root}/notes.txt");
    assert_eq!(
        rules[..5],
        [
            // Given to a command: a command rule, same id.
            (1, c, RuleKind::Exact, "cargo publish".to_string()),
            // Given to edits (relative and absolute paths): edit rules.
            (2, e, RuleKind::Exact, notes.clone()),
            (3, e, RuleKind::Exact, "/srv/x > /etc/hosts".to_string()),
            // Nothing says which: it allowed both, and still does, as two
            // rules the person can tell apart and remove one of.
            (4, c, RuleKind::Exact, TEXT.to_string()),
            // Prefix rules were only ever hand-written, for commands.
            (7, c, RuleKind::Prefix, "rm -rf build".to_string()),
        ]
    );
    assert_eq!(rules.len(), 6, "{rules:?}");
    assert_eq!(
        (rules[5].1, rules[5].2, rules[5].3.as_str()),
        (e, RuleKind::Exact, TEXT)
    );
    // A rule kind this Tether does not know (id 8) allowed nothing before
    // and allows nothing now; it stays in the file.
    let raw: i64 = Connection::open(store.path())
        .expect("open")
        .query_row("SELECT COUNT(*) FROM allow_rules WHERE id = 8", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(raw, 1);

    // What the gate does with them: the person denies whatever they are
    // asked, so an Allow is the rule's doing.
    let deny = Person::new(Answer::Deny(tether::gate::DenyCause::Person));
    let g = gate(deny.clone(), store, ws.path());
    let allowed = |d: Decision| d == Decision::Allow;
    assert!(allowed(check(&g, c, "cargo publish", ws.path()).await));
    assert!(allowed(
        check(&g, e, "/srv/x > /etc/hosts", ws.path()).await
    ));
    assert!(!allowed(
        check(&g, c, "/srv/x > /etc/hosts", ws.path()).await
    ));
    assert!(allowed(check(&g, e, &notes, ws.path()).await));
    assert!(allowed(check(&g, c, TEXT, ws.path()).await));
    assert!(allowed(check(&g, e, TEXT, ws.path()).await));
    assert!(allowed(check(&g, c, "rm -rf build dist", ws.path()).await));
    assert!(!allowed(check(&g, c, "rm -rf builds", ws.path()).await));
    assert!(!allowed(check(&g, c, "rm -rf /tmp/y", ws.path()).await));
    assert_eq!(
        deny.asked(),
        [
            (c, "/srv/x > /etc/hosts".to_string()),
            (c, "rm -rf builds".to_string()),
            (c, "rm -rf /tmp/y".to_string()),
        ],
        "asked exactly where no rule applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_approval_is_stored_as_the_wire_spells_it() {
    let ws = tempfile::tempdir().expect("ws");
    let data = tempfile::tempdir().expect("data");
    let store = Store::open(data.path());
    store
        .write(tether::store::Write::CreateSession {
            id: "s1".into(),
            parent_id: None,
            title: "t".into(),
            workspace: String::new(),
            model: String::new(),
        })
        .await
        .expect("session");
    let nobody = Person::new(Answer::Deny(tether::gate::DenyCause::TimedOut));
    let g = gate(nobody, store.clone(), ws.path());
    assert!(matches!(
        check(&g, ActionKind::Command, TEXT, ws.path()).await,
        Decision::Deny(_)
    ));
    let export = store.export("s1".into()).await.expect("export");
    let a = &export.approvals[0];
    assert_eq!(
        (a.request.as_str(), a.decision.as_str(), a.scope.as_str()),
        (TEXT, "timed_out", "none")
    );
}
