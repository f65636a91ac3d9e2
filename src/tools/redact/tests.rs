//! Each format is redacted; things that only look like secrets are not.
//! The secrets are synthetic but format-valid, built from pieces so this file
//! does not trip secret scanners.

use super::*;

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
const HEX: &str = "0123456789abcdef";

/// A PEM private key block of `lines` 64-char lines.
pub fn pem(kind: &str, lines: usize, sep: &str) -> String {
    let mut s = format!("-----BEGIN {kind}PRIVATE KEY-----{sep}");
    for i in 0..lines {
        s.push_str(&rnd(100 + i as u64, 64, B64));
        s.push_str(sep);
    }
    s.push_str(&rnd(99, 24, B64));
    s.push_str("==");
    s.push_str(sep);
    s.push_str(&format!("-----END {kind}PRIVATE KEY-----"));
    s
}

/// One synthetic secret per format: (name, secret, a line that carries it).
pub fn samples() -> Vec<(&'static str, String, String)> {
    let mut v: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |name: &'static str, secret: String, line: String| v.push((name, secret, line));
    let k = pem("RSA ", 6, "\n");
    add("pem rsa", k.clone(), format!("key file:\n{k}\ndone"));
    let k = pem("", 4, "\n");
    add("pem pkcs8", k.clone(), k.clone());
    let k = pem("OPENSSH ", 4, "\n");
    add("pem openssh", k.clone(), format!("$ cat id_ed25519\n{k}\n"));
    let body = rnd(7, 64, B64);
    add(
        "gcp service account json",
        body.clone(),
        format!(
            "{{\"type\": \"service_account\", \"private_key_id\": \"{}\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n{}\\n-----END PRIVATE KEY-----\\n\"}}",
            rnd(8, 40, HEX),
            rnd(9, 64, B64)
        ),
    );
    let id = format!("AKIA{}", rnd(1, 16, UPPER32));
    add(
        "aws access key id",
        id.clone(),
        format!("aws_access_key_id = {id}"),
    );
    let id = format!("ASIA{}", rnd(2, 16, UPPER32));
    add(
        "aws temporary key id",
        id.clone(),
        format!("\"AccessKeyId\": \"{id}\","),
    );
    let s = rnd(3, 40, B64);
    add(
        "aws secret",
        s.clone(),
        format!("aws_secret_access_key = {s}"),
    );
    add(
        "aws secret json",
        s.clone(),
        format!("\"SecretAccessKey\": \"{s}\","),
    );
    let s = format!("{}==", rnd(4, 86, B64));
    add(
        "azure connection string",
        s.clone(),
        format!("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};EndpointSuffix=core.windows.net"),
    );
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let t = format!("{p}{}", rnd(5, 36, ALNUM));
        add("github token", t.clone(), format!("GITHUB token: {t}"));
    }
    let t = format!("github_pat_{}_{}", rnd(6, 22, ALNUM), rnd(7, 59, ALNUM));
    add(
        "github fine-grained pat",
        t.clone(),
        format!("export GH={t}"),
    );
    let t = format!("glpat-{}", rnd(8, 20, ALNUM));
    add("gitlab pat", t.clone(), format!("remote: {t}"));
    let t = format!(
        "xoxb-{}-{}-{}",
        rnd(9, 12, "0123456789"),
        rnd(10, 13, "0123456789"),
        rnd(11, 24, ALNUM)
    );
    add("slack bot", t.clone(), format!("SLACK={t}"));
    let t = format!(
        "xoxp-{}-{}-{}-{}",
        rnd(12, 11, "0123456789"),
        rnd(13, 11, "0123456789"),
        rnd(14, 13, "0123456789"),
        rnd(15, 32, HEX)
    );
    add("slack user", t.clone(), t.clone());
    let t = format!(
        "xapp-1-A{}-{}-{}",
        rnd(16, 10, UPPER32),
        rnd(17, 13, "0123456789"),
        rnd(18, 64, HEX)
    );
    add("slack app", t.clone(), format!("app token {t}"));
    let t = format!(
        "hooks.slack.com/services/T{}/B{}/{}",
        rnd(19, 8, UPPER32),
        rnd(20, 8, UPPER32),
        rnd(21, 24, ALNUM)
    );
    add(
        "slack webhook",
        t.clone(),
        format!("curl -X POST https://{t} -d '{{}}'"),
    );
    let t = format!(
        "sk-proj-{}T3BlbkFJ{}",
        rnd(22, 74, ALNUM),
        rnd(23, 74, ALNUM)
    );
    add(
        "openai project",
        t.clone(),
        format!("OPENAI_API_KEY=\"{t}\""),
    );
    let t = format!("sk-{}", rnd(24, 48, ALNUM));
    add(
        "openai legacy",
        t.clone(),
        format!("using {t} for the call"),
    );
    let t = format!("sk-ant-api03-{}AA", rnd(25, 93, ALNUM));
    add("anthropic", t.clone(), format!("x-api-key: {t}"));
    let t = format!("AIza{}", rnd(26, 35, ALNUM));
    add(
        "google api key",
        t.clone(),
        format!("const maps = \"{t}\";"),
    );
    let t = format!("sk_live_{}", rnd(27, 24, ALNUM));
    add("stripe", t.clone(), format!("Stripe.api_key = '{t}'"));
    let t = format!("rk_test_{}", rnd(28, 24, ALNUM));
    add("stripe restricted", t.clone(), t.clone());
    let t = format!("npm_{}", rnd(29, 36, ALNUM));
    add(
        "npm",
        t.clone(),
        format!("//registry.npmjs.org/:_authToken={t}"),
    );
    let t = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
        rnd(30, 40, ALNUM),
        rnd(31, 43, ALNUM)
    );
    add("jwt", t.clone(), format!("Cookie: session={t}; Path=/"));
    let p = format!("p4{}", rnd(32, 12, ALNUM));
    add(
        "database url",
        p.clone(),
        format!("DATABASE_URL=postgres://app:{p}@db.internal:5432/app"),
    );
    add(
        "redis url",
        p.clone(),
        format!("redis://default:{p}@cache:6379/0"),
    );
    add("password assignment", p.clone(), format!("password={p}"));
    add(
        "password yaml",
        p.clone(),
        format!("  db_password: \"{p}\""),
    );
    add(
        "password json",
        p.clone(),
        format!("{{\"password\": \"{p}\"}}"),
    );
    add(
        "password of letters",
        "hxquZuEHYOckXh".into(),
        "password=hxquZuEHYOckXh".into(),
    );
    let s = rnd(33, 32, ALNUM);
    add(
        "secret assignment",
        s.clone(),
        format!("SECRET_KEY = '{s}'"),
    );
    add("token assignment", s.clone(), format!("token={s}&user=1"));
    add("api_key yaml", s.clone(), format!("api_key: {s}"));
    add(
        "client secret",
        s.clone(),
        format!("\"client_secret\": \"{s}\""),
    );
    let t = rnd(34, 40, ALNUM);
    add(
        "bearer header",
        t.clone(),
        format!("> Authorization: Bearer {t}"),
    );
    let t = format!("{}=", rnd(35, 23, B64));
    add(
        "basic header",
        t.clone(),
        format!("Authorization: Basic {t}"),
    );
    v
}

fn r() -> Redactor {
    Redactor::default()
}

#[test]
fn the_builtin_rules_compile() {
    let rules = Rules::builtin().expect("rules");
    assert!(rules.len() > 90, "{} rules", rules.len());
}

#[test]
fn every_format_is_redacted() {
    let r = r();
    for (name, secret, line) in samples() {
        let out = r.redact(&line);
        assert!(
            !out.contains(&secret),
            "{name} not redacted:\n{line}\n->\n{out}"
        );
        assert!(out.contains(MARK), "{name}: {out}");
        assert!(r.finds_secret(&line), "{name}");
    }
}

#[test]
fn what_is_replaced_is_the_secret_only() {
    let r = r();
    let p = "p4ssW0rdXyz9";
    assert_eq!(
        r.redact(&format!("url=postgres://app:{p}@db.internal:5432/app ok")),
        "url=postgres://app:[REDACTED]@db.internal:5432/app ok"
    );
    assert_eq!(
        r.redact(&format!("password = {p}\nnext")),
        "password = [REDACTED]\nnext"
    );
    let key = pem("RSA ", 3, "\n");
    assert_eq!(
        r.redact(&format!("before\n{key}\nafter")),
        "before\n[REDACTED]\nafter"
    );
    let s = rnd(40, 32, ALNUM);
    assert_eq!(
        r.redact(&format!("{{\"token\": \"{s}\", \"user\": \"ann\"}}")),
        "{\"token\": \"[REDACTED]\", \"user\": \"ann\"}"
    );
}

#[test]
fn a_private_key_cut_short_is_still_redacted() {
    let r = r();
    let key = pem("", 8, "\n");
    let lines: Vec<&str> = key.lines().collect();
    // The head (an output cap or a read_file limit cut the END off).
    let head = lines[..5].join("\n");
    let out = r.redact(&format!("{head}\n[… 2000 bytes of output cut …]"));
    for l in &lines[1..5] {
        assert!(!out.contains(l), "{out}");
    }
    // The tail (the BEGIN line was cut off).
    let tail = lines[5..].join("\n");
    let out = r.redact(&format!("[… cut …]\n{tail}\nnext"));
    for l in &lines[5..lines.len() - 1] {
        assert!(!out.contains(l), "{out}");
    }
    assert!(out.ends_with("next"), "{out}");
}

#[test]
fn values_of_secret_variables_are_redacted_too() {
    let env: BTreeMap<String, String> = [
        ("GITHUB_TOKEN", "ghp_abcdef123456"),
        ("DB_PASSWORD", "hunter2hunter2"),
        ("PATH", "/usr/bin:/bin"),
        ("SHORT_KEY", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let r = Redactor::from_env(&env, &["sk-tether-key"]);
    let out =
        r.redact("token ghp_abcdef123456 pw hunter2hunter2 path /usr/bin:/bin key sk-tether-key 1");
    assert_eq!(
        out,
        "token [REDACTED] pw [REDACTED] path /usr/bin:/bin key [REDACTED] 1"
    );
    assert!(
        !format!("{r:?}").contains("hunter2"),
        "Debug never shows a value"
    );
}

/// False positives hurt the agent: it cannot read what it needs.
#[test]
fn ordinary_text_and_code_are_left_alone() {
    let r = r();
    let keep = [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "Merge: 1a410ef 3c8d4b2",
        "id = 550e8400-e29b-41d4-a716-446655440000",
        "request-id: 7d3f0c2e-9a4b-4c5d-8e6f-0a1b2c3d4e5f",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "checksum = \"3f5a1e0bbd6b3d3e4f7c6a9d2b8e1f0c5a4d3b2e1f0a9b8c7d6e5f4a3b2c1d0e\"",
        "\"integrity\": \"sha512-3n2W8gZcF0vLkY0XqC0sC3Vd3pGqgk8Y1Ep+vLq0g0yqWcJ0f4W2uM6gY5eZ8h4kJ7Qw2r3tS1uV9xY0zA1bB==\"",
        "const ICON: &str = \"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\";",
        "fn redact_secret_values_from_tool_output_before_storage() {}",
        "AbstractSingletonProxyFactoryBeanConfigurationProviderImpl",
        "tokenizer_max_sequence_length = 512",
        "let token = next_token(&mut lexer);",
        "let key = map.get(&k).unwrap_or_default();",
        "apiKey: process.env.API_KEY,",
        "password: getPassword(),",
        "password = user_password",
        "password: passwordField.value",
        "secret = SecretManagerClient",
        "self.password = password",
        "password = os.environ[\"DB_PASSWORD\"]",
        "PASSWORD_MIN_LENGTH = 12",
        "password: ${DB_PASSWORD}",
        "secret_name = \"prod-db-credentials-v2\"",
        "token_type: \"bearer\"",
        "TOKEN_FILE=/var/run/secrets/token.txt",
        "Authorization: Bearer ${TOKEN}",
        "https://github.com/owner/repo.git",
        "git@github.com:owner/repo.git",
        "http://localhost:8080/api/v1/items?id=42",
        "ssh://git@example.com:2222/owner/repo.git",
        "format!(\"postgres://app:{p}@db:5432/app\")",
        "connect to scheme://user:password@host",
        "DATABASE_URL=mysql://root:${MYSQL_ROOT_PASSWORD}@db/app",
        "redis://:<password>@cache:6379",
        "amqp://guest:***@rabbit:5672",
        "They say the key to money is keeping tokens safe.",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0gD8dMtFpBQ7uPbC4Z1Z0yq3Kq6uPk9dX2cZ8T3bF9v5l2Yh1w6a7Qe3w==\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZ5a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3\n-----END CERTIFICATE-----",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ann@host",
        "   Compiling tether v0.1.0 (/work/tether)\n    Finished `dev` profile [unoptimized + debuginfo] target(s) in 4.21s",
        "error[E0308]: mismatched types --> src/tools/redact.rs:120:9",
        "docker.io/library/postgres@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "sk-learn is a typo for scikit-learn",
        "AKIAIOSFODNN7EXAMPLE",
        "max_tokens: 4096",
        "secret: true",
    ];
    for text in keep {
        let out = r.redact(text);
        assert_eq!(out, text, "changed ({:?})", r.rule_ids(text));
    }
}

#[test]
fn json_strings_are_redacted_inside_and_stay_valid_json() {
    let r = r();
    let key = pem("RSA ", 3, "\n");
    let args = serde_json::json!({"path": "k.pem", "content": key}).to_string();
    let calls = serde_json::json!([{"id": "c1", "type": "function",
        "function": {"name": "write_file", "arguments": args}}]);
    let out = r.redact_json(&calls);
    let text = out.to_string();
    assert!(!text.contains(&rnd(100, 64, B64)), "{text}");
    let inner: Value = serde_json::from_str(
        out[0]["function"]["arguments"]
            .as_str()
            .expect("arguments string"),
    )
    .expect("still JSON");
    assert_eq!(inner["content"], MARK);
    assert_eq!(inner["path"], "k.pem");
    // Nothing to redact: the arguments are kept byte for byte.
    let plain = r#"{"path":  "a.txt"}"#;
    assert_eq!(r.redact_json_text(plain), plain);
}

/// Every way of cutting a line into two deltas: the shown text never holds
/// the secret, and nothing is lost.
#[test]
fn a_secret_split_across_stream_deltas_never_shows() {
    let r = r();
    for (name, secret, line) in samples() {
        let text = format!("Here it is: {line} and more words after it.\nNext line.");
        for cut in (1..text.len()).filter(|c| text.is_char_boundary(*c)) {
            let mut s = r.stream();
            let mut shown = s.push(&text[..cut]);
            shown.push_str(&s.push(&text[cut..]));
            shown.push_str(&s.finish());
            assert!(!shown.contains(&secret), "{name} cut at {cut}: {shown}");
            assert!(shown.ends_with("Next line."), "{name}: {shown}");
        }
    }
}

#[test]
fn a_known_value_split_across_deltas_never_shows() {
    let env: BTreeMap<String, String> = [("DEPLOY_TOKEN".to_string(), "correcthorse".to_string())]
        .into_iter()
        .collect();
    let r = Redactor::from_env(&env, &[]);
    let text = "the value is correcthorse, see";
    for cut in 1..text.len() {
        let mut s = r.stream();
        let mut shown = s.push(&text[..cut]);
        shown.push_str(&s.push(&text[cut..]));
        shown.push_str(&s.finish());
        assert_eq!(shown, "the value is [REDACTED], see", "cut at {cut}");
    }
}

#[test]
fn prose_streams_as_it_arrives() {
    let r = r();
    let mut s = r.stream();
    // A word goes out at once, even before it is complete (an editor shows
    // it while the model is still thinking).
    assert_eq!(s.push("thinking…"), "thinking…");
    assert_eq!(s.push(" the answer is"), " the answer is");
    assert_eq!(s.push(" near"), " near");
    // A suspicious word holds the rest of the line until enough plain words
    // follow it.
    assert_eq!(s.push(" token: abc "), " ");
    assert_eq!(s.push("one two three four"), "");
    assert_eq!(
        s.push(" five six seven"),
        "token: abc one two three four five six seven"
    );
    assert_eq!(s.finish(), "");
}

#[test]
fn a_secret_that_starts_in_a_shown_word_has_its_rest_replaced() {
    let r = r();
    let token = format!("ghp_{}", rnd(50, 36, ALNUM));
    let mut s = r.stream();
    let mut shown = s.push("push with gh");
    assert_eq!(shown, "push with gh");
    shown.push_str(&s.push(&token[2..20]));
    shown.push_str(&s.push(&token[20..]));
    shown.push_str(&s.push(" now"));
    shown.push_str(&s.finish());
    assert_eq!(shown, "push with gh[REDACTED] now");
}

#[test]
fn a_long_held_line_goes_out_but_its_last_word_waits() {
    let r = r();
    let mut s = r.stream();
    let mut shown = String::new();
    // A suspicious word every few words holds the line; past the limit all
    // but the last word goes out.
    for _ in 0..2000 {
        shown.push_str(&s.push("x1 word word "));
    }
    assert!(shown.len() > 20_000, "{} bytes shown", shown.len());
    let token = format!("ghp_{}", rnd(60, 36, ALNUM));
    shown.push_str(&s.push(&token[..10]));
    shown.push_str(&s.push(&token[10..]));
    shown.push_str(&s.finish());
    assert!(!shown.contains(&token[..10]), "no part of the token");
    assert!(shown.ends_with(MARK), "{}", &shown[shown.len() - 40..]);
}
