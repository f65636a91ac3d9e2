//! `tether doctor`: what a person runs when something is off. It reports
//! where each setting came from, whether the model can be reached with the
//! key given, whether history can be saved, and how to hook Tether into the
//! editors found on `PATH` — each problem with its fix in one line.
//!
//! **Invariants:** never prints the API key (only where it came from); reads
//! nothing from stdin; changes nothing but a probe file it removes again in
//! the data dir; exits non-zero only when something a turn needs is broken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Config, ConfigError, Origin, Sources};
use crate::term::{self, CliError, CliResult};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but the person may want to look.
    Warn,
    /// Something a turn needs is broken.
    Fail,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it, in one line (absent when all is well).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn problem(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigFileReport {
    pub path: PathBuf,
    pub found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditorReport {
    pub editor: &'static str,
    pub path: PathBuf,
    /// Where the snippet goes.
    pub target: String,
    pub snippet: String,
}

/// The whole report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub ok: bool,
    pub config_files: Vec<ConfigFileReport>,
    pub settings: Vec<Setting>,
    pub checks: Vec<Check>,
    pub editors: Vec<EditorReport>,
}

/// What the doctor looks at; the binary fills it from the process, tests
/// fill it themselves.
pub struct Inputs {
    pub env: BTreeMap<String, String>,
    pub workspace_root: Option<PathBuf>,
    /// The `tether` binary the editor snippets should start.
    pub exe: PathBuf,
}

/// `tether doctor [--json]`.
pub async fn run(json_out: bool, root: Option<PathBuf>) -> CliResult {
    let root = root.or_else(|| std::env::current_dir().ok());
    let inputs = Inputs {
        env: std::env::vars().collect(),
        workspace_root: root,
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tether")),
    };
    let report = diagnose(&inputs).await;
    let printed = if json_out {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::failed(format!("cannot render the report: {e}")))?;
        term::print_raw(&term::json_for_terminal(json)).and_then(|()| term::print_raw("\n"))
    } else {
        // Settings, model ids and error texts come from files and servers:
        // shown, never obeyed.
        term::print(&render(&report))
    };
    // A closed stdout (`tether doctor | head -1`) keeps the verdict: the exit code.
    term::unless_closed(printed)?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs every check.
pub async fn diagnose(inputs: &Inputs) -> Report {
    let sources = Sources {
        env: inputs.env.clone(),
        init_options: None,
        workspace_root: inputs.workspace_root.clone(),
    };
    let mut checks = Vec::new();
    let (cfg, config_files) = match Config::load(&sources) {
        Ok(cfg) => {
            let files = cfg
                .files
                .iter()
                .map(|f| ConfigFileReport {
                    path: f.path.clone(),
                    found: f.found,
                    error: f.error.clone(),
                })
                .collect();
            (Some(cfg), files)
        }
        Err(e) => {
            let path = match &e {
                ConfigError::Read { path, .. } | ConfigError::Parse { path, .. } => {
                    Some(path.clone())
                }
                ConfigError::InitOptions(_) => None,
            };
            checks.push(Check::problem(
                "config",
                Status::Fail,
                e.to_string(),
                match &path {
                    Some(p) => format!("fix or move aside {}", p.display()),
                    None => "fix the editor's initializationOptions".to_string(),
                },
            ));
            let files = path
                .map(|p| ConfigFileReport {
                    path: p,
                    found: true,
                    error: Some(e.to_string()),
                })
                .into_iter()
                .collect();
            (None, files)
        }
    };
    let mut settings = Vec::new();
    let mut editors = Vec::new();
    if let Some(cfg) = &cfg {
        for w in &cfg.warnings {
            checks.push(Check::problem(
                "config",
                Status::Warn,
                w.clone(),
                "edit the file named above",
            ));
        }
        settings = settings_of(cfg);
        checks.extend(model_checks(cfg).await);
        checks.push(sandbox_check(cfg));
        if let Some(root) = &inputs.workspace_root {
            checks.push(instructions_check(cfg, root));
        }
        checks.extend(store_checks(&cfg.data_dir).await);
        checks.extend(mcp_checks(cfg, inputs.workspace_root.clone()).await);
        editors = editors_on_path(&inputs.env, &inputs.exe, cfg);
    }
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report {
        version: env!("CARGO_PKG_VERSION"),
        ok,
        config_files,
        settings,
        checks,
        editors,
    }
}

/// One check per MCP server: started, its tools listed, stopped. A server
/// that fails is a warning (turns run without it).
async fn mcp_checks(cfg: &Config, root: Option<PathBuf>) -> Vec<Check> {
    if cfg.mcp_servers.is_empty() && cfg.workspace_mcp_servers.is_empty() {
        return Vec::new();
    }
    let root = root.unwrap_or_else(|| PathBuf::from("."));
    crate::mcp::probe(cfg, root)
        .await
        .into_iter()
        .map(|r| {
            if r.failed() {
                Check::problem(
                    "mcp server",
                    Status::Warn,
                    r.render(),
                    "check the server's entry under [mcp_servers] and run `tether mcp list`",
                )
            } else {
                Check::ok("mcp server", r.render())
            }
        })
        .collect()
}

fn settings_of(cfg: &Config) -> Vec<Setting> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
    let rows: Vec<(&'static str, String)> = vec![
        ("model", opt(&cfg.model)),
        ("base_url", cfg.effective_base_url()),
        (
            "api_key",
            if cfg.api_key.is_some() {
                "(set, not shown)".into()
            } else {
                "(not set)".into()
            },
        ),
        ("data_dir", cfg.data_dir.display().to_string()),
        ("max_iterations", cfg.max_iterations.to_string()),
        ("approval.mode", cfg.approval.mode.as_str().into()),
        (
            "approval.timeout_secs",
            cfg.approval.timeout_secs.to_string(),
        ),
        (
            "approval.read_outside",
            cfg.approval.read_outside.as_str().into(),
        ),
        (
            "delegation.approvals",
            cfg.delegation.approvals.as_str().into(),
        ),
        (
            "tools.command_timeout_secs",
            cfg.tools.command_timeout_secs.to_string(),
        ),
        ("tools.max_parallel", cfg.tools.max_parallel.to_string()),
        ("sandbox.mode", cfg.sandbox.mode.as_str().into()),
        ("sandbox.network", cfg.sandbox.network.to_string()),
        (
            "model_options.max_tokens",
            cfg.model_options
                .max_tokens
                .map(|n| n.to_string())
                .unwrap_or_else(|| {
                    format!(
                        "(not set: {}, at most a quarter of the window)",
                        crate::engine::context::DEFAULT_MAX_TOKENS
                    )
                }),
        ),
        (
            "model_context_window",
            cfg.model_context_window
                .map(|n| n.to_string())
                .unwrap_or_else(|| "(not set: discovered or learned)".into()),
        ),
    ];
    rows.into_iter()
        .map(|(key, value)| Setting {
            key,
            value,
            source: match cfg.origin(key) {
                Origin::Default if key == "base_url" && cfg.base_url.is_none() => {
                    "default (OpenAI)".to_string()
                }
                o => o.to_string(),
            },
        })
        .collect()
}

/// What the kernel offers for the OS sandbox, and what commands get.
fn sandbox_check(cfg: &Config) -> Check {
    use crate::sandbox::{Mode, Support};
    let support = Support::detect();
    let kernel = support.describe();
    if cfg.sandbox.mode == Mode::Off {
        return Check::problem(
            "sandbox",
            Status::Warn,
            format!("off (sandbox.mode = \"off\"); the kernel offers {kernel}"),
            "commands run with your full rights; set [sandbox] mode = \"workspace-write\" to confine them",
        );
    }
    if !cfg!(target_os = "linux") || !support.usable() {
        return Check::problem(
            "sandbox",
            Status::Warn,
            format!("not possible here: {kernel}; commands run with your full rights and the approval classifier is the only gate"),
            "a Linux kernel with Landlock (5.13+, enabled in the `lsm=` boot list) and seccomp",
        );
    }
    let net = if cfg.sandbox.network {
        "network on"
    } else {
        "no network (seccomp)"
    };
    Check::ok(
        "sandbox",
        format!(
            "{}: {kernel}; commands write only in the workspace{} and a session temp dir, {net}",
            cfg.sandbox.mode.as_str(),
            if cfg.sandbox.writable.is_empty() {
                String::new()
            } else {
                format!(
                    ", {}",
                    cfg.sandbox
                        .writable
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
    )
}

/// Where a person changes a setting that came from `origin`.
fn where_to_change(cfg: &Config, key: &str, file_key: &str, env_var: &str) -> String {
    match cfg.origin(key) {
        Origin::Env(v) => format!("change ${v}"),
        Origin::File(p) => format!("change `{file_key}` in {}", p.display()),
        Origin::Workspace(p) => format!("change `{file_key}` in {}", p.display()),
        Origin::InitOptions => "change it in the editor's initializationOptions".to_string(),
        Origin::Default => format!(
            "set ${env_var} or `{file_key}` in {}",
            cfg.user_config_display()
        ),
    }
}

async fn model_checks(cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(model) = cfg.model.clone().filter(|m| !m.is_empty()) else {
        out.push(Check::problem(
            "model",
            Status::Fail,
            "no model configured",
            format!(
                "set TETHER_MODEL and TETHER_BASE_URL, or `model` and `base_url` in {}",
                cfg.user_config_display()
            ),
        ));
        return out;
    };
    out.push(Check::ok(
        "model",
        format!("{model} (from {})", cfg.origin("model")),
    ));
    let base = cfg.effective_base_url();
    let local = crate::config::is_loopback_url(&base);
    match (&cfg.api_key, local) {
        (Some(_), _) => out.push(Check::ok(
            "api key",
            format!("present (from {}; never shown)", cfg.origin("api_key")),
        )),
        (None, true) => out.push(Check::ok(
            "api key",
            format!("none, and none needed for a server on this machine ({base})"),
        )),
        (None, false) => {
            out.push(Check::problem(
                "api key",
                Status::Fail,
                format!("no API key for {base}"),
                "set TETHER_API_KEY (or OPENAI_API_KEY, or the variable named by `api_key_env`)",
            ));
            return out;
        }
    }
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(
            cfg.model_options.connect_timeout_secs.clamp(1, 10),
        ))
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            out.push(Check::problem(
                "endpoint",
                Status::Fail,
                format!("cannot build an HTTP client: {e}"),
                "report this as a bug",
            ));
            return out;
        }
    };
    let with_auth = |req: reqwest::RequestBuilder| {
        let mut req = req;
        for (k, v) in &cfg.model_options.headers {
            req = req.header(k, v);
        }
        match &cfg.api_key {
            Some(k) => req.bearer_auth(k.expose()),
            None => req,
        }
    };
    let endpoint = probe_endpoint(cfg, &http, &with_auth, &base, &model).await;
    let reachable = endpoint.status != Status::Fail;
    out.push(endpoint);
    if reachable {
        out.push(
            match crate::model::window::discover(&http, &base, &model, &with_auth).await {
                Some(w) => Check::ok(
                    "context window",
                    format!("{} tokens (from {})", w.tokens, w.source),
                ),
                None => Check::ok(
                    "context window",
                    "not stated by the server and not a model Tether knows; it is learned from the first overflow error",
                ),
            },
        );
    }
    out
}

/// The `AGENTS.md` files a turn in `root` puts in the system prompt.
fn instructions_check(cfg: &Config, root: &std::path::Path) -> Check {
    let personal = cfg
        .user_config
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| d.join("AGENTS.md"));
    let files = crate::engine::instructions::files(root, personal.as_deref());
    if files.is_empty() {
        return Check::ok(
            "project instructions",
            "no AGENTS.md (looked in the config dir and from the repository root down to the workspace)",
        );
    }
    let list: Vec<String> = files
        .iter()
        .map(|p| {
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let cut = if size as usize > crate::engine::instructions::MAX_FILE_BYTES {
                " (cut)"
            } else {
                ""
            };
            format!("{} ({size} bytes{cut})", p.display())
        })
        .collect();
    Check::ok("project instructions", list.join(", "))
}

type Auth<'a> = dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync + 'a;

/// `GET {base}/models`, and where that is not served, a one-token completion.
async fn probe_endpoint(
    cfg: &Config,
    http: &reqwest::Client,
    with_auth: &Auth<'_>,
    base: &str,
    model: &str,
) -> Check {
    let change_url = where_to_change(cfg, "base_url", "base_url", "TETHER_BASE_URL");
    let listed = with_auth(http.get(format!("{base}/models"))).send().await;
    let resp = match listed {
        Ok(r) => r,
        Err(e) => {
            return Check::problem(
                "endpoint",
                Status::Fail,
                format!("cannot reach {base}: {}", transport_error(&e)),
                format!("start the model server at {base}, or {change_url}"),
            )
        }
    };
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        return key_rejected(cfg, base, status);
    }
    if resp.status().is_success() {
        if let Ok(body) = resp.json::<Value>().await {
            if let Some(ids) = model_ids(&body) {
                if ids.iter().any(|id| id == model) {
                    return Check::ok("endpoint", format!("{base} answers and lists {model}"));
                }
                let shown: Vec<&str> = ids.iter().take(8).map(String::as_str).collect();
                return Check::problem(
                    "endpoint",
                    Status::Warn,
                    format!(
                        "{base} answers, but does not list {model} (it lists {} model(s): {})",
                        ids.len(),
                        shown.join(", ")
                    ),
                    format!(
                        "if turns fail with \"model not found\", {}",
                        where_to_change(cfg, "model", "model", "TETHER_MODEL")
                    ),
                );
            }
        }
    }
    // No usable model list: ask for one token.
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Reply with OK."}],
        "max_tokens": 1,
        "stream": false,
    });
    let resp = match with_auth(http.post(format!("{base}/chat/completions")))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Check::problem(
                "endpoint",
                Status::Fail,
                format!("cannot reach {base}: {}", transport_error(&e)),
                format!("start the model server at {base}, or {change_url}"),
            )
        }
    };
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        return key_rejected(cfg, base, status);
    }
    if resp.status().is_success() {
        return Check::ok(
            "endpoint",
            format!("{base} completed a one-token request with {model}"),
        );
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(text);
    let message = crate::text::prefix(&message, crate::text::Max::Chars(200));
    let fix = if status == 404 {
        format!(
            "check the model name: {}",
            where_to_change(cfg, "model", "model", "TETHER_MODEL")
        )
    } else {
        format!("check the server's log; the endpoint is {base} ({change_url})")
    };
    Check::problem(
        "endpoint",
        Status::Fail,
        format!("{base} answered HTTP {status}: {message}"),
        fix,
    )
}

fn key_rejected(cfg: &Config, base: &str, status: u16) -> Check {
    let fix = match cfg.origin("api_key") {
        Origin::Env(v) => format!("put a valid key for {base} in ${v}"),
        _ => format!("set TETHER_API_KEY to a valid key for {base}"),
    };
    Check::problem(
        "endpoint",
        Status::Fail,
        format!("{base} refused the API key (HTTP {status})"),
        fix,
    )
}

/// The cause chain of a transport error, without the URL repeated.
fn transport_error(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    parts.last().cloned().unwrap_or_else(|| e.to_string())
}

fn model_ids(body: &Value) -> Option<Vec<String>> {
    // OpenAI shape `{data: [{id}]}`; Ollama's `/api/tags` shape `{models: [{name}]}`.
    let list = body
        .get("data")
        .or_else(|| body.get("models"))
        .and_then(Value::as_array)?;
    Some(
        list.iter()
            .filter_map(|m| {
                m.get("id")
                    .or_else(|| m.get("name"))
                    .or_else(|| m.get("model"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect(),
    )
}

async fn store_checks(data_dir: &Path) -> Vec<Check> {
    let dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || store_checks_blocking(&dir))
        .await
        .unwrap_or_else(|e| {
            vec![Check::problem(
                "store",
                Status::Fail,
                format!("the store check stopped: {e}"),
                "report this as a bug",
            )]
        })
}

fn store_checks_blocking(dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let fix_dir = "set TETHER_DATA_DIR (or `data_dir`) to a directory you can write";
    let probe = dir.join(format!(".tether-doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => out.push(Check::ok(
            "data dir",
            format!("{} is writable", dir.display()),
        )),
        Err(e) => {
            out.push(Check::problem(
                "data dir",
                Status::Fail,
                format!(
                    "{} is not writable ({e}): history cannot be saved",
                    dir.display()
                ),
                fix_dir,
            ));
            return out;
        }
    }
    let db = dir.join("tether.db");
    if !db.exists() {
        out.push(Check::ok(
            "store",
            "no history yet (tether.db is created on first use)",
        ));
        return out;
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = size(&dir.join("tether.db-wal"));
    let opened = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| {
        c.busy_timeout(Duration::from_secs(2))?;
        let version = crate::store::schema::version(&c)?;
        let check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        let sessions: i64 = if version > 0 {
            c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?
        } else {
            0
        };
        Ok((version, check, sessions))
    });
    match opened {
        Ok((version, check, sessions)) if check == "ok" => {
            let current = crate::store::schema::CURRENT_VERSION;
            let note = if version < current {
                format!(" (upgraded to v{current} on next use)")
            } else if version > current {
                " (newer than this Tether; read as is)".to_string()
            } else {
                String::new()
            };
            out.push(Check::ok(
                "store",
                format!(
                    "{}: schema v{version}{note}, {}, WAL {}, {sessions} session(s)",
                    db.display(),
                    human_bytes(size(&db)),
                    human_bytes(wal)
                ),
            ));
        }
        Ok((_, check, _)) => out.push(Check::problem(
            "store",
            Status::Warn,
            format!("{} is damaged: {check}", db.display()),
            "Tether moves an unreadable database aside on its next start; to start afresh now, move tether.db (and tether.db-wal) away",
        )),
        Err(e) => out.push(Check::problem(
            "store",
            Status::Warn,
            format!("{} cannot be read: {e}", db.display()),
            "Tether moves an unreadable database aside on its next start; to start afresh now, move tether.db (and tether.db-wal) away",
        )),
    }
    out
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The executables named `name` on `PATH`, first match.
fn find_on_path(env: &BTreeMap<String, String>, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env.get("PATH")?;
    std::env::split_paths(path).map(|d| d.join(name)).find(|p| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

fn editors_on_path(env: &BTreeMap<String, String>, exe: &Path, cfg: &Config) -> Vec<EditorReport> {
    let exe_s = exe.display().to_string();
    let model = cfg.model.clone().unwrap_or_else(|| "gpt-4o-mini".into());
    let base = cfg.base_url.clone();
    // A checkout's plugin folder, when the binary runs from `target/…`.
    let plugin_dir = exe
        .ancestors()
        .map(|a| a.join("editors").join("neovim"))
        .find(|p| p.join("lua").is_dir())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/path/to/tether/editors/neovim".into());
    let mut out = Vec::new();
    if let Some(path) = find_on_path(env, "nvim") {
        let base_line = base
            .as_ref()
            .map(|b| format!(", baseUrl = {b:?}"))
            .unwrap_or_default();
        out.push(EditorReport {
            editor: "Neovim",
            path,
            target: "init.lua".into(),
            snippet: format!(
                "vim.opt.runtimepath:append({plugin_dir:?})\nrequire('tether').setup({{\n  cmd = {{ {exe_s:?} }},\n  init_options = {{ model = {model:?}{base_line} }},\n}})"
            ),
        });
    }
    for name in ["hx", "helix"] {
        if let Some(path) = find_on_path(env, name) {
            let base_line = base
                .as_ref()
                .map(|b| format!(", baseUrl = {b:?}"))
                .unwrap_or_default();
            out.push(EditorReport {
                editor: "Helix",
                path,
                target: "~/.config/helix/languages.toml".into(),
                snippet: format!(
                    "[language-server.tether]\ncommand = {exe_s:?}\nconfig = {{ model = {model:?}{base_line} }}\n\n[[language]]\nname = \"rust\"   # and each language you use\nlanguage-servers = [\"rust-analyzer\", {{ name = \"tether\", only-features = [\"code-action\", \"workspace-command\"] }}]"
                ),
            });
            break;
        }
    }
    for name in ["code", "codium", "code-server"] {
        if let Some(path) = find_on_path(env, name) {
            let base_line = base
                .as_ref()
                .map(|b| format!(",\n  \"tether.baseUrl\": {b:?}"))
                .unwrap_or_default();
            out.push(EditorReport {
                editor: "VS Code",
                path,
                target: "settings.json (after installing editors/vscode's tether.vsix)".into(),
                snippet: format!(
                    "{{\n  \"tether.path\": {exe_s:?},\n  \"tether.model\": {model:?}{base_line}\n}}"
                ),
            });
            break;
        }
    }
    out
}

/// The report as a person reads it.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "tether doctor (tether {})", r.version);
    let _ = writeln!(s, "\nconfig files (lowest precedence first):");
    for f in &r.config_files {
        let state = match (&f.error, f.found) {
            (Some(e), _) => format!("unusable: {e}"),
            (None, true) => "read".to_string(),
            (None, false) => "not present".to_string(),
        };
        let _ = writeln!(s, "  {} — {state}", f.path.display());
    }
    if !r.settings.is_empty() {
        let _ = writeln!(
            s,
            "\nsettings (defaults < config file < initializationOptions < environment):"
        );
        let width = r.settings.iter().map(|x| x.key.len()).max().unwrap_or(0);
        for x in &r.settings {
            let _ = writeln!(
                s,
                "  {:width$}  {}  [{}]",
                x.key,
                x.value,
                x.source,
                width = width
            );
        }
    }
    let _ = writeln!(s, "\nchecks:");
    for c in &r.checks {
        let mut detail = c.detail.lines();
        let first = detail.next().unwrap_or_default();
        let _ = writeln!(s, "  [{}] {}: {first}", c.status.mark(), c.name);
        for more in detail.filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(s, "         {more}");
        }
        if let Some(f) = &c.fix {
            let _ = writeln!(s, "         fix: {f}");
        }
    }
    if !r.editors.is_empty() {
        let _ = writeln!(s, "\neditors found on PATH:");
        for e in &r.editors {
            let _ = writeln!(
                s,
                "  {} ({}) — add to {}:",
                e.editor,
                e.path.display(),
                e.target
            );
            for line in e.snippet.lines() {
                let _ = writeln!(s, "      {line}");
            }
        }
    }
    let failed = r.checks.iter().filter(|c| c.status == Status::Fail).count();
    let _ = writeln!(
        s,
        "\n{}",
        if failed == 0 {
            "Everything a turn needs is in place.".to_string()
        } else {
            format!("{failed} problem(s) stop turns from working; see the fixes above.")
        }
    );
    s
}
