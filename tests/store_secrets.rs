//! Secrets never stored: the value of an environment variable named like
//! `*_TOKEN`, and secrets recognised by their format (private keys, cloud and
//! Git host tokens, JWTs, passwords in URLs and assignments …), that show up
//! in a file the model reads, in a search hit, in a command's output, or in
//! the model's own text and tool arguments are redacted before the model, the
//! editor and the store see them — not a byte of them reaches the data dir.
//! `tether sessions delete` leaves no copy of what it deleted.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Reply};

const SECRET: &str = "tok-4f9a2c81d7e6b035";

/// A deterministic pseudo-random string over `alphabet`.
fn rnd(seed: u64, len: usize, alphabet: &str) -> String {
    let a: Vec<char> = alphabet.chars().collect();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize]
        })
        .collect()
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Synthetic, format-valid secrets (built from pieces so the repository does
/// not trip secret scanners): `(format, the lines of a file, what must never
/// be seen)`.
fn synthetic_secrets() -> Vec<(&'static str, String, Vec<String>)> {
    let mut v = Vec::new();
    let body: Vec<String> = (0..6).map(|i| rnd(100 + i, 64, B64)).collect();
    v.push((
        "PEM private key",
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
            body.join("\n")
        ),
        body.clone(),
    ));
    let gcp: Vec<String> = (0..3).map(|i| rnd(200 + i, 64, B64)).collect();
    v.push((
        "GCP service-account JSON",
        format!(
            "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n\"}}",
            gcp.join("\\n")
        ),
        gcp,
    ));
    let mut one = |name: &'static str, secret: String, line: String| {
        v.push((name, line, vec![secret]));
    };
    let id = format!("AKIA{}", rnd(1, 16, UPPER32));
    one(
        "AWS access key id",
        id.clone(),
        format!("aws_access_key_id = {id}"),
    );
    let s = rnd(2, 40, B64);
    one(
        "AWS secret key",
        s.clone(),
        format!("aws_secret_access_key = {s}"),
    );
    let s = format!("{}==", rnd(3, 86, B64));
    one(
        "Azure connection string",
        s.clone(),
        format!("AZURE=DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};EndpointSuffix=core.windows.net"),
    );
    let t = format!("ghp_{}", rnd(4, 36, ALNUM));
    one("GitHub token", t.clone(), format!("gh auth: {t}"));
    let t = format!("github_pat_{}_{}", rnd(5, 22, ALNUM), rnd(6, 59, ALNUM));
    one(
        "GitHub fine-grained token",
        t.clone(),
        format!("GH_PAT={t}"),
    );
    let t = format!("glpat-{}", rnd(7, 20, ALNUM));
    one("GitLab token", t.clone(), format!("gitlab: {t}"));
    let t = format!(
        "xoxb-{}-{}-{}",
        rnd(8, 12, "0123456789"),
        rnd(9, 13, "0123456789"),
        rnd(10, 24, ALNUM)
    );
    one("Slack bot token", t.clone(), format!("slack_bot={t}"));
    let t = format!(
        "hooks.slack.com/services/T{}/B{}/{}",
        rnd(11, 8, UPPER32),
        rnd(12, 8, UPPER32),
        rnd(13, 24, ALNUM)
    );
    one("Slack webhook", t.clone(), format!("webhook: https://{t}"));
    let t = format!(
        "sk-proj-{}T3BlbkFJ{}",
        rnd(14, 74, ALNUM),
        rnd(15, 74, ALNUM)
    );
    one("OpenAI key", t.clone(), format!("OPENAI=\"{t}\""));
    let t = format!("sk-ant-api03-{}AA", rnd(16, 93, ALNUM));
    one("Anthropic key", t.clone(), format!("anthropic {t}"));
    let t = format!("AIza{}", rnd(17, 35, ALNUM));
    one("Google API key", t.clone(), format!("maps_key: \"{t}\""));
    let t = format!("sk_live_{}", rnd(18, 24, ALNUM));
    one("Stripe key", t.clone(), format!("stripe {t}"));
    let t = format!("npm_{}", rnd(19, 36, ALNUM));
    one(
        "npm token",
        t.clone(),
        format!("//registry.npmjs.org/:_authToken={t}"),
    );
    let t = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
        rnd(20, 40, ALNUM),
        rnd(21, 43, ALNUM)
    );
    one("JWT", t.clone(), format!("session cookie {t}"));
    let p = format!("Pw{}", rnd(22, 14, ALNUM));
    one(
        "database URL",
        p.clone(),
        format!("DATABASE_URL=postgres://app:{p}@db.internal:5432/app"),
    );
    let p = format!("hx{}", rnd(23, 12, ALNUM));
    one("password assignment", p.clone(), format!("password={p}"));
    let s = rnd(24, 32, ALNUM);
    one("api_key assignment", s.clone(), format!("api_key: {s}"));
    v
}

/// Whether `hay` holds `needle` anywhere.
fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file of the data dir (the database, its -wal and -shm), read whole.
fn stored_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(data)
        .expect("data dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            (path.display().to_string(), bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_tool_output_never_reach_the_model_or_the_store() {
    let ws = support::workspace();
    support::write_file(
        ws.path(),
        "deploy.env",
        &format!("REGION=eu\nDEPLOY_TOKEN={SECRET}\n"),
    );
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("c1", "read_file", json!({"path": "deploy.env"})),
            call("c2", "search", json!({"pattern": "DEPLOY_TOKEN"})),
            call(
                "c3",
                "run_command",
                json!({"command": "cat deploy.env; echo \"$DEPLOY_TOKEN\""}),
            ),
        ]),
        Reply::Text("The region is eu.".into()),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .env("DEPLOY_TOKEN", SECRET)
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request(
            "tether/prompt",
            json!({"text": "which region do we deploy to?"}),
        )
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");

    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let results = tool_results(&reqs[1].body);
    assert_eq!(results.len(), 3);
    for (id, text) in &results {
        assert!(!text.contains(SECRET), "{id} leaked to the model: {text}");
    }
    assert!(
        results[0].1.contains("DEPLOY_TOKEN=[REDACTED]"),
        "{}",
        results[0].1
    );
    assert!(results[1].1.contains("[REDACTED]"), "{}", results[1].1);
    assert!(
        results[2].1.contains("[REDACTED]"),
        "the command ran: {}",
        results[2].1
    );
    for u in ed.updates() {
        assert!(!u.to_string().contains(SECRET), "leaked to the editor: {u}");
    }
    ed.shutdown().await;

    // Not in any byte of the database, its WAL or anything else stored.
    let mut stored = 0;
    for entry in std::fs::read_dir(data.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        stored += bytes.len();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
    assert!(stored > 0, "history was saved");
}

/// Rewriting a whole file the model read with its secrets redacted would write
/// the placeholder over them: `write_file` refuses and says why, the file keeps
/// its secret, and `edit_file` away from the secret still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_a_file_with_redacted_secrets_is_refused() {
    let ws = support::workspace();
    let original = format!("region: eu\ntoken: {SECRET}\n");
    support::write_file(ws.path(), "deploy.yaml", &original);
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "r1",
            "read_file",
            json!({"path": "deploy.yaml"}),
        )]),
        Reply::ToolCalls(vec![call(
            "w1",
            "write_file",
            json!({"path": "deploy.yaml", "content": "region: us\ntoken: [REDACTED]\n"}),
        )]),
        Reply::ToolCalls(vec![call(
            "e1",
            "edit_file",
            json!({"path": "deploy.yaml", "old_text": "region: eu", "new_text": "region: us"}),
        )]),
        Reply::Text("Moved to us.".into()),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .env("DEPLOY_TOKEN", SECRET)
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request("tether/prompt", json!({"text": "deploy to us instead"}))
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 4);
    let read = tool_results(&reqs[1].body);
    assert!(read[0].1.contains("token: [REDACTED]"), "{}", read[0].1);
    // Each request carries the whole conversation: the newest result is last.
    let newest = |i: usize| {
        tool_results(&reqs[i].body)
            .last()
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    let write = newest(2);
    assert!(
        write.contains("holds secret values") && write.contains("Nothing was changed"),
        "{write}"
    );
    let edit = newest(3);
    assert!(
        edit.contains("deploy.yaml") && !edit.contains("holds secret"),
        "{edit}"
    );
    let now = std::fs::read_to_string(ws.path().join("deploy.yaml")).expect("file");
    assert_eq!(now, format!("region: us\ntoken: {SECRET}\n"));
    ed.shutdown().await;
}

/// Eighteen secret formats in a file, printed by a command and read with
/// `read_file`, then repeated by the model in a tool argument and in its
/// answer: none reaches a model request, the editor (updates, progress, any
/// notification or request) or any byte of the data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_by_format_never_reach_the_model_the_editor_or_the_store() {
    let secrets = synthetic_secrets();
    assert!(secrets.len() >= 10);
    let ws = support::workspace();
    let mut file = String::from("region=eu-west-1\n");
    for (_, lines, _) in &secrets {
        file.push_str(lines);
        file.push('\n');
    }
    support::write_file(ws.path(), "secrets.txt", &file);
    let needles: Vec<(&str, String)> = secrets
        .iter()
        .flat_map(|(name, _, n)| n.iter().map(move |s| (*name, s.clone())))
        .collect();
    let github = secrets[5].2[0].clone();
    let anthropic = secrets[11].2[0].clone();
    let aws = secrets[2].2[0].clone();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("c1", "run_command", json!({"command": "cat secrets.txt"})),
            call("c2", "read_file", json!({"path": "secrets.txt"})),
        ]),
        // The model repeats what it (should not have) seen: in a tool
        // argument and in its own words.
        Reply::TextThenTools(
            format!("Checking where {github} is used."),
            vec![call("c3", "search", json!({"pattern": aws}))],
        ),
        Reply::Text(format!(
            "The file holds keys such as {anthropic}\nand {github}; rotate them."
        )),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request("tether/prompt", json!({"text": "what is in secrets.txt?"}))
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    support::turn_ended(&ed, &result).await;

    let reqs = model.requests();
    assert_eq!(reqs.len(), 3);
    // The tools ran and the model read the rest of the file.
    let results = tool_results(&reqs[1].body);
    assert_eq!(results.len(), 2);
    for (id, text) in &results {
        assert!(text.contains("region=eu-west-1"), "{id}: {text}");
        assert!(
            text.matches("[REDACTED]").count() >= secrets.len(),
            "{id}: {text}"
        );
    }
    for (i, r) in reqs.iter().enumerate() {
        for (name, s) in &needles {
            assert!(
                !r.raw_body.contains(s.as_str()),
                "{name} reached model request {i}"
            );
        }
    }
    // The editor: every notification (updates, progress, messages), every
    // request it was sent, and the prompt's result.
    let mut seen: Vec<String> = ed
        .notifications()
        .iter()
        .map(|n| n.params.to_string())
        .collect();
    seen.extend(ed.server_requests().iter().map(|r| r.params.to_string()));
    seen.push(result.to_string());
    for text in &seen {
        for (name, s) in &needles {
            assert!(
                !text.contains(s.as_str()),
                "{name} reached the editor: {text}"
            );
        }
    }
    let streamed: String = ed
        .updates()
        .iter()
        .filter(|u| u["kind"] == "text")
        .filter_map(|u| u["delta"].as_str().map(str::to_string))
        .collect();
    assert!(
        streamed.contains("rotate them.") && streamed.contains("[REDACTED]"),
        "{streamed}"
    );
    // History, as the person sees it, says what was redacted.
    let hist = ed
        .request("tether/history", json!({"sessionId": result["sessionId"]}))
        .await
        .expect("history");
    assert!(hist.to_string().contains("[REDACTED]"), "{hist}");
    ed.shutdown().await;

    let files = stored_files(data.path());
    assert!(
        files.iter().any(|(_, b)| holds(b, "region=eu-west-1")),
        "history was saved"
    );
    for (path, bytes) in &files {
        for (name, s) in &needles {
            assert!(!holds(bytes, s), "{path} holds the {name}");
        }
    }
}

/// What the person types or attaches goes to the model as it is (they chose
/// to show it), but the store keeps it redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_person_shows_reaches_the_model_but_not_the_store() {
    let ws = support::workspace();
    let token = format!("glpat-{}", rnd(77, 20, ALNUM));
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::Text("Use it as a CI variable.".into())]).await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let result = ed
        .request(
            "tether/prompt",
            json!({"text": format!("where do I put {token}?")}),
        )
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    let reqs = model.requests();
    assert!(
        reqs[0].raw_body.contains(&token),
        "the model saw what was typed"
    );
    let hist = ed
        .request("tether/history", json!({"sessionId": result["sessionId"]}))
        .await
        .expect("history");
    assert_eq!(
        hist["messages"][0]["text"], "where do I put [REDACTED]?",
        "{hist}"
    );
    ed.shutdown().await;
    for (path, bytes) in stored_files(data.path()) {
        assert!(!holds(&bytes, &token), "{path} holds the token");
    }
}

/// `tether sessions delete` leaves no copy: not in the database's rows or
/// free pages, not in its full-text index, not in the WAL — while the session
/// that was not deleted is still there (the search can find what it looks
/// for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_session_leaves_no_copy_in_the_database_files() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    // One word each, so the full-text index holds it as a term.
    let gone = "qxzorbanthelicopter7";
    let kept = "qxzmeridianpelican4";
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "c1",
            "run_command",
            json!({"command": format!("echo {gone}")}),
        )]),
        Reply::Text(format!("It printed {gone}.")),
        Reply::Text(format!("Noted {kept}.")),
    ])
    .await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data.path(),
    }));
    let (ed, _) = Editor::start(cfg).await;
    let first = ed
        .request("tether/prompt", json!({"text": format!("print {gone}")}))
        .await
        .expect("prompt");
    assert_eq!(first["stopReason"], "end_turn", "{first}");
    let sid = first["sessionId"].as_str().expect("session id").to_string();
    // A prompt without a session id starts another session.
    let second = ed
        .request("tether/prompt", json!({"text": format!("remember {kept}")}))
        .await
        .expect("prompt");
    let kept_sid = second["sessionId"].clone();
    assert_ne!(kept_sid, Value::String(sid.clone()));
    ed.shutdown().await;

    // Before: both are stored (so the search below can fail).
    let before = stored_files(data.path());
    assert!(
        before.iter().any(|(_, b)| holds(b, gone)),
        "stored before delete"
    );

    let home = tempfile::tempdir().expect("home");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["sessions", "delete", &sid])
        .env("HOME", home.path())
        .env("TETHER_DATA_DIR", data.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run tether sessions delete");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let after = stored_files(data.path());
    // The FTS index stores terms prefix-compressed: look for the part after
    // the first letters too.
    for (path, bytes) in &after {
        assert!(
            !holds(bytes, gone),
            "{path} still holds the deleted session"
        );
        assert!(!holds(bytes, &gone[3..]), "{path} still holds a term of it");
    }
    assert!(
        after.iter().any(|(_, b)| holds(b, kept)),
        "the other session was kept"
    );
}
