//! Configuration: defaults, the user's config file, the workspace's own config,
//! `initializationOptions` and environment variables, merged into one [`Config`].
//!
//! Precedence (lowest first): defaults, `$XDG_CONFIG_HOME/tether/config.toml`,
//! `initializationOptions`, environment (`TETHER_*`). The workspace's
//! `.tether/config.toml` is applied last but may only *tighten* the approval
//! policy (docs/DESIGN.md §6); anything that would loosen it is ignored with a warning.
//!
//! **Invariant:** the API key lives only in [`Secret`], which never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// A user-defined slash command: a prompt template (`{args}` is replaced by
/// what follows the command) or an alias for another command.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CommandDef {
    pub prompt: Option<String>,
    pub alias: Option<String>,
    pub description: Option<String>,
}

impl CommandDef {
    /// What a command list says of it: its description, else what it is an
    /// alias for, else its prompt's first line.
    pub fn summary(&self) -> String {
        self.description
            .clone()
            .or_else(|| self.alias.as_ref().map(|a| format!("alias for {a}")))
            .or_else(|| {
                self.prompt
                    .as_ref()
                    .map(|p| crate::tools::first_line(p, 50))
            })
            .unwrap_or_default()
    }
}

/// A secret string whose `Debug`/`Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What to do with a command or edit that needs a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// Ask the person through the editor (default).
    #[default]
    Ask,
    /// Never ask: deny whatever would ask.
    Deny,
    /// Run whatever would ask (forbidden commands still never run).
    Allow,
}

impl ApprovalMode {
    /// Strictness order: allow < ask < deny.
    fn strictness(self) -> u8 {
        match self {
            ApprovalMode::Allow => 0,
            ApprovalMode::Ask => 1,
            ApprovalMode::Deny => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Ask => "ask",
            ApprovalMode::Deny => "deny",
            ApprovalMode::Allow => "allow",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalConfig {
    pub mode: ApprovalMode,
    pub timeout_secs: u64,
    /// Reads by file tools outside the workspace roots (dependency caches
    /// and secrets aside): ask (default), allow or deny.
    pub read_outside: ApprovalMode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DelegationConfig {
    pub model: Option<String>,
    pub max_depth: u32,
    pub max_children: usize,
    pub max_iterations: u32,
    /// `ask` (default) or `deny` for approvals asked by subagents.
    pub approvals: ApprovalMode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolsConfig {
    pub command_timeout_secs: u64,
    pub output_cap_bytes: usize,
    pub max_parallel: usize,
    /// How long to keep reading a command's pipes after it exited.
    pub drain_ms: u64,
    /// Grace period between SIGTERM and SIGKILL on cancel.
    pub kill_grace_ms: u64,
    /// Deadline for one batch of tool calls (0 = none).
    pub batch_deadline_secs: u64,
    /// The `tether` binary that supervises commands (set by the binary
    /// itself, not by users); `None` runs commands directly.
    pub supervisor: Option<PathBuf>,
    /// The OS sandbox commands run in (set by the frontend from
    /// [`Config::sandbox`] and what the kernel offers); `None`: none.
    pub sandbox: Option<crate::sandbox::Sandbox>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    pub connect_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_retries: usize,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub headers: BTreeMap<String, String>,
    pub extra_body: Option<Value>,
}

/// The merged configuration of one server or `exec` run.
#[derive(Debug, Clone)]
pub struct Config {
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key: Option<Secret>,
    pub data_dir: PathBuf,
    pub max_iterations: u32,
    pub approval: ApprovalConfig,
    pub delegation: DelegationConfig,
    pub tools: ToolsConfig,
    /// `[sandbox]`: the OS sandbox of commands.
    pub sandbox: crate::sandbox::SandboxConfig,
    pub model_options: ModelOptions,
    /// The model's context window in tokens, when the person states it
    /// (`model_context_window`); otherwise it is discovered or learned.
    pub model_context_window: Option<u64>,
    /// User-defined slash commands (`[commands.NAME]`).
    pub commands: BTreeMap<String, CommandDef>,
    /// The largest LSP message body accepted from the editor; a larger one
    /// is refused unread (`maxMessageBytes`).
    pub max_message_bytes: usize,
    /// MCP tool servers of the user's config and `initializationOptions`.
    pub mcp_servers: BTreeMap<String, crate::mcp::McpServerConfig>,
    /// MCP servers the workspace's own config adds: each runs only once the
    /// person approves it in the dialog (it could run any code).
    pub workspace_mcp_servers: BTreeMap<String, crate::mcp::McpServerConfig>,
    /// Warnings collected while loading (shown to the person once).
    pub warnings: Vec<String>,
    /// Where each setting that is not a default came from, by its config-file
    /// key (`model`, `approval.mode`, …); `tether doctor` and advice given to
    /// the person name it.
    pub origins: BTreeMap<&'static str, Origin>,
    /// The config files looked at, in the order they were applied.
    pub files: Vec<ConfigFile>,
    /// The user's config file path (whether or not it exists).
    pub user_config: Option<PathBuf>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// The user's config file.
    File(PathBuf),
    /// The editor's `initializationOptions`.
    InitOptions,
    /// An environment variable.
    Env(String),
    /// The workspace's `.tether/config.toml` (which can only tighten).
    Workspace(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::InitOptions => f.write_str("the editor's initializationOptions"),
            Origin::Env(v) => write!(f, "environment ${v}"),
            Origin::Workspace(p) => write!(f, "{} (workspace)", p.display()),
        }
    }
}

/// A config file Tether looked for, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// `false`: no such file (not an error).
    pub found: bool,
    /// Why the file was not used, if it was found but unusable.
    pub error: Option<String>,
}

/// One layer of configuration, every field optional. Accepts the snake_case
/// keys of the TOML file and the camelCase keys of `initializationOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Layer {
    pub model: Option<String>,
    #[serde(alias = "baseUrl")]
    pub base_url: Option<String>,
    #[serde(alias = "apiKeyEnv")]
    pub api_key_env: Option<String>,
    #[serde(alias = "dataDir")]
    pub data_dir: Option<PathBuf>,
    #[serde(alias = "maxIterations")]
    pub max_iterations: Option<u32>,
    pub approval: ApprovalLayer,
    pub delegation: DelegationLayer,
    pub tools: ToolsLayer,
    pub sandbox: SandboxLayer,
    #[serde(alias = "modelOptions")]
    pub model_options: ModelLayer,
    #[serde(alias = "modelContextWindow")]
    pub model_context_window: Option<u64>,
    pub commands: Option<BTreeMap<String, CommandDef>>,
    #[serde(alias = "maxMessageBytes")]
    pub max_message_bytes: Option<usize>,
    /// MCP tool servers, by name (`[mcp_servers.NAME]`, `mcpServers`).
    #[serde(alias = "mcpServers")]
    pub mcp_servers: Option<BTreeMap<String, crate::mcp::McpServerConfig>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApprovalLayer {
    pub mode: Option<ApprovalMode>,
    #[serde(alias = "timeoutSecs")]
    pub timeout_secs: Option<u64>,
    #[serde(alias = "readOutside")]
    pub read_outside: Option<ApprovalMode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DelegationLayer {
    pub model: Option<String>,
    #[serde(alias = "maxDepth")]
    pub max_depth: Option<u32>,
    #[serde(alias = "maxChildren")]
    pub max_children: Option<usize>,
    #[serde(alias = "maxIterations")]
    pub max_iterations: Option<u32>,
    pub approvals: Option<ApprovalMode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ToolsLayer {
    #[serde(alias = "commandTimeoutSecs")]
    pub command_timeout_secs: Option<u64>,
    #[serde(alias = "outputCapBytes")]
    pub output_cap_bytes: Option<usize>,
    #[serde(alias = "maxParallel")]
    pub max_parallel: Option<usize>,
    #[serde(alias = "drainMs")]
    pub drain_ms: Option<u64>,
    #[serde(alias = "killGraceMs")]
    pub kill_grace_ms: Option<u64>,
    #[serde(alias = "batchDeadlineSecs")]
    pub batch_deadline_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SandboxLayer {
    pub mode: Option<crate::sandbox::Mode>,
    pub network: Option<bool>,
    pub writable: Option<Vec<PathBuf>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelLayer {
    #[serde(alias = "connectTimeoutSecs")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(alias = "idleTimeoutSecs")]
    pub idle_timeout_secs: Option<u64>,
    #[serde(alias = "maxRetries")]
    pub max_retries: Option<usize>,
    pub temperature: Option<f64>,
    #[serde(alias = "maxTokens")]
    pub max_tokens: Option<u64>,
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(alias = "extraBody")]
    pub extra_body: Option<Value>,
}

/// Errors loading configuration; each says which file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid initializationOptions: {0}")]
    InitOptions(String),
}

/// Where configuration comes from; tests and frontends fill it explicitly
/// instead of the loader reading process-wide state behind their back.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Environment variables (normally `std::env::vars()`).
    pub env: BTreeMap<String, String>,
    /// `initializationOptions` from the editor, if any.
    pub init_options: Option<Value>,
    /// The workspace root, whose `.tether/config.toml` may tighten the policy.
    pub workspace_root: Option<PathBuf>,
}

impl Sources {
    pub fn from_process_env() -> Self {
        Sources {
            env: std::env::vars().collect(),
            ..Default::default()
        }
    }
}

/// The user's config file: `$XDG_CONFIG_HOME/tether/config.toml`, else
/// `~/.config/tether/config.toml`.
pub fn user_config_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    xdg_dir(env, "XDG_CONFIG_HOME", ".config").map(|d| d.join("tether").join("config.toml"))
}

fn xdg_dir(env: &BTreeMap<String, String>, var: &str, fallback: &str) -> Option<PathBuf> {
    match env.get(var) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback)),
    }
}

fn read_layer_file(path: &Path) -> Result<Option<Layer>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str::<Layer>(&text)
            .map(Some)
            .map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Config {
    /// Loads and merges every layer.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut cfg = Config::defaults(&sources.env);
        if let Some(path) = user_config_path(&sources.env) {
            let layer = read_layer_file(&path);
            cfg.files.push(ConfigFile {
                path: path.clone(),
                found: !matches!(layer, Ok(None)),
                error: layer.as_ref().err().map(ToString::to_string),
            });
            if let Some(layer) = layer? {
                cfg.apply(layer, Origin::File(path));
            }
        }
        if let Some(opts) = &sources.init_options {
            if !opts.is_null() {
                let layer: Layer = serde_json::from_value(opts.clone())
                    .map_err(|e| ConfigError::InitOptions(e.to_string()))?;
                cfg.apply(layer, Origin::InitOptions);
            }
        }
        cfg.apply_env(&sources.env);
        if let Some(root) = &sources.workspace_root {
            let path = root.join(".tether").join("config.toml");
            let layer = read_layer_file(&path);
            cfg.files.push(ConfigFile {
                path: path.clone(),
                found: !matches!(layer, Ok(None)),
                error: layer.as_ref().err().map(ToString::to_string),
            });
            match layer {
                Ok(Some(layer)) => cfg.apply_workspace(layer, &path),
                Ok(None) => {}
                Err(e) => cfg.warnings.push(format!("ignored workspace config: {e}")),
            }
        }
        let (key, key_origin) = resolve_api_key(&sources.env, cfg.api_key_env.as_deref());
        cfg.api_key = key;
        if let Some(origin) = key_origin {
            cfg.origins.insert("api_key", origin);
        }
        cfg.user_config = user_config_path(&sources.env);
        Ok(cfg)
    }

    fn defaults(env: &BTreeMap<String, String>) -> Config {
        let data_dir = xdg_dir(env, "XDG_DATA_HOME", ".local/share")
            .map(|d| d.join("tether"))
            .unwrap_or_else(|| PathBuf::from(".tether-data"));
        Config {
            model: None,
            base_url: None,
            api_key_env: None,
            api_key: None,
            data_dir,
            max_iterations: 50,
            approval: ApprovalConfig {
                mode: ApprovalMode::Ask,
                timeout_secs: 120,
                read_outside: ApprovalMode::Ask,
            },
            delegation: DelegationConfig {
                model: None,
                max_depth: 1,
                max_children: 3,
                max_iterations: 30,
                approvals: ApprovalMode::Ask,
            },
            tools: ToolsConfig {
                command_timeout_secs: 120,
                output_cap_bytes: 32 * 1024,
                max_parallel: 8,
                drain_ms: 2000,
                kill_grace_ms: 300,
                batch_deadline_secs: 0,
                supervisor: None,
                sandbox: None,
            },
            sandbox: crate::sandbox::SandboxConfig::default(),
            model_options: ModelOptions {
                connect_timeout_secs: 10,
                idle_timeout_secs: 120,
                max_retries: 4,
                temperature: None,
                max_tokens: None,
                headers: BTreeMap::new(),
                extra_body: None,
            },
            model_context_window: None,
            commands: BTreeMap::new(),
            max_message_bytes: crate::lsp::framing::DEFAULT_MAX_MESSAGE_BYTES,
            mcp_servers: BTreeMap::new(),
            workspace_mcp_servers: BTreeMap::new(),
            warnings: Vec::new(),
            origins: BTreeMap::new(),
            files: Vec::new(),
            user_config: None,
        }
    }

    /// Where a setting (by its config-file key) came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The user's config file as a person would type it (for advice).
    pub fn user_config_display(&self) -> String {
        self.user_config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "$XDG_CONFIG_HOME/tether/config.toml".to_string())
    }

    /// Applies a layer on top (later layers win), recording where each value
    /// came from.
    pub fn apply(&mut self, l: Layer, origin: Origin) {
        let origins = &mut self.origins;
        let mut take = |key: &'static str, present: bool| {
            if present {
                origins.insert(key, origin.clone());
            }
        };
        take("model", l.model.is_some());
        take("base_url", l.base_url.is_some());
        take("api_key_env", l.api_key_env.is_some());
        take("data_dir", l.data_dir.is_some());
        take("max_iterations", l.max_iterations.is_some());
        take("approval.mode", l.approval.mode.is_some());
        take("approval.timeout_secs", l.approval.timeout_secs.is_some());
        take("approval.read_outside", l.approval.read_outside.is_some());
        let d = &l.delegation;
        take("delegation.model", d.model.is_some());
        take("delegation.max_depth", d.max_depth.is_some());
        take("delegation.max_children", d.max_children.is_some());
        take("delegation.max_iterations", d.max_iterations.is_some());
        take("delegation.approvals", d.approvals.is_some());
        let t = &l.tools;
        take(
            "tools.command_timeout_secs",
            t.command_timeout_secs.is_some(),
        );
        take("tools.output_cap_bytes", t.output_cap_bytes.is_some());
        take("tools.max_parallel", t.max_parallel.is_some());
        take("tools.drain_ms", t.drain_ms.is_some());
        take("tools.kill_grace_ms", t.kill_grace_ms.is_some());
        take("tools.batch_deadline_secs", t.batch_deadline_secs.is_some());
        take("sandbox.mode", l.sandbox.mode.is_some());
        take("sandbox.network", l.sandbox.network.is_some());
        take("sandbox.writable", l.sandbox.writable.is_some());
        let m = &l.model_options;
        take(
            "model_options.connect_timeout_secs",
            m.connect_timeout_secs.is_some(),
        );
        take(
            "model_options.idle_timeout_secs",
            m.idle_timeout_secs.is_some(),
        );
        take("model_options.max_retries", m.max_retries.is_some());
        take("model_options.temperature", m.temperature.is_some());
        take("model_options.max_tokens", m.max_tokens.is_some());
        take("model_options.headers", m.headers.is_some());
        take("model_options.extra_body", m.extra_body.is_some());
        take("model_context_window", l.model_context_window.is_some());
        take("commands", l.commands.is_some());
        take("mcp_servers", l.mcp_servers.is_some());
        self.apply_values(l);
    }

    fn apply_values(&mut self, l: Layer) {
        set(&mut self.model, l.model.map(Some));
        set(&mut self.base_url, l.base_url.map(Some));
        set(&mut self.api_key_env, l.api_key_env.map(Some));
        set(&mut self.data_dir, l.data_dir);
        set(&mut self.max_iterations, l.max_iterations);
        set(&mut self.approval.mode, l.approval.mode);
        set(&mut self.approval.timeout_secs, l.approval.timeout_secs);
        set(&mut self.approval.read_outside, l.approval.read_outside);
        let d = l.delegation;
        set(&mut self.delegation.model, d.model.map(Some));
        set(&mut self.delegation.max_depth, d.max_depth);
        set(&mut self.delegation.max_children, d.max_children);
        set(&mut self.delegation.max_iterations, d.max_iterations);
        set(&mut self.delegation.approvals, d.approvals);
        let t = l.tools;
        set(&mut self.tools.command_timeout_secs, t.command_timeout_secs);
        set(&mut self.tools.output_cap_bytes, t.output_cap_bytes);
        set(&mut self.tools.max_parallel, t.max_parallel);
        set(&mut self.tools.drain_ms, t.drain_ms);
        set(&mut self.tools.kill_grace_ms, t.kill_grace_ms);
        set(&mut self.tools.batch_deadline_secs, t.batch_deadline_secs);
        set(&mut self.sandbox.mode, l.sandbox.mode);
        set(&mut self.sandbox.network, l.sandbox.network);
        set(&mut self.sandbox.writable, l.sandbox.writable);
        let m = l.model_options;
        set(
            &mut self.model_options.connect_timeout_secs,
            m.connect_timeout_secs,
        );
        set(
            &mut self.model_options.idle_timeout_secs,
            m.idle_timeout_secs,
        );
        set(&mut self.model_options.max_retries, m.max_retries);
        set(&mut self.model_options.temperature, m.temperature.map(Some));
        set(&mut self.model_options.max_tokens, m.max_tokens.map(Some));
        set(&mut self.model_options.headers, m.headers);
        set(&mut self.model_options.extra_body, m.extra_body.map(Some));
        set(&mut self.max_message_bytes, l.max_message_bytes);
        set(
            &mut self.model_context_window,
            l.model_context_window.filter(|n| *n > 0).map(Some),
        );
        if let Some(cmds) = l.commands {
            self.commands.extend(cmds);
        }
        if let Some(servers) = l.mcp_servers {
            self.mcp_servers.extend(servers);
        }
        self.tools.max_parallel = self.tools.max_parallel.max(1);
        self.delegation.max_children = self.delegation.max_children.max(1);
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(m) = get("TETHER_MODEL") {
            self.model = Some(m);
            self.origins
                .insert("model", Origin::Env("TETHER_MODEL".into()));
        }
        if let Some(u) = get("TETHER_BASE_URL") {
            self.base_url = Some(u);
            self.origins
                .insert("base_url", Origin::Env("TETHER_BASE_URL".into()));
        } else if self.base_url.is_none() {
            self.base_url = get("OPENAI_BASE_URL");
            if self.base_url.is_some() {
                self.origins
                    .insert("base_url", Origin::Env("OPENAI_BASE_URL".into()));
            }
        }
        if let Some(d) = get("TETHER_DATA_DIR") {
            self.data_dir = PathBuf::from(d);
            self.origins
                .insert("data_dir", Origin::Env("TETHER_DATA_DIR".into()));
        }
    }

    /// The workspace's own config may tighten the approval policy, never loosen it.
    fn apply_workspace(&mut self, l: Layer, path: &Path) {
        if let Some(mode) = l.approval.mode {
            if mode.strictness() >= self.approval.mode.strictness() {
                self.approval.mode = mode;
                self.origins
                    .insert("approval.mode", Origin::Workspace(path.to_path_buf()));
            } else {
                self.warnings.push(format!(
                    "{}: approval.mode = \"{}\" ignored: a workspace config can tighten the approval policy (currently \"{}\") but never loosen it",
                    path.display(),
                    mode.as_str(),
                    self.approval.mode.as_str()
                ));
            }
        }
        if let Some(r) = l.approval.read_outside {
            if r.strictness() >= self.approval.read_outside.strictness() {
                self.approval.read_outside = r;
                self.origins.insert(
                    "approval.read_outside",
                    Origin::Workspace(path.to_path_buf()),
                );
            } else {
                self.warnings.push(format!(
                    "{}: approval.read_outside = \"{}\" ignored: a workspace config can only tighten it (currently \"{}\")",
                    path.display(),
                    r.as_str(),
                    self.approval.read_outside.as_str()
                ));
            }
        }
        if let Some(t) = l.approval.timeout_secs {
            if t < self.approval.timeout_secs {
                self.approval.timeout_secs = t;
                self.origins.insert(
                    "approval.timeout_secs",
                    Origin::Workspace(path.to_path_buf()),
                );
            }
        }
        if let Some(mode) = l.delegation.approvals {
            if mode.strictness() >= self.delegation.approvals.strictness() {
                self.delegation.approvals = mode;
                self.origins.insert(
                    "delegation.approvals",
                    Origin::Workspace(path.to_path_buf()),
                );
            }
        }
        self.apply_workspace_sandbox(l.sandbox, path);
        if let Some(servers) = l.mcp_servers {
            // Kept apart: each is asked about before it runs (`mcp`).
            self.workspace_mcp_servers.extend(servers);
        }
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }

    /// `[sandbox]` from the workspace: a stricter mode and the network off
    /// are taken; a looser mode, the network on and more writable paths
    /// are ignored with a warning.
    fn apply_workspace_sandbox(&mut self, l: SandboxLayer, path: &Path) {
        let origin = || Origin::Workspace(path.to_path_buf());
        if let Some(mode) = l.mode {
            if mode.strictness() >= self.sandbox.mode.strictness() {
                self.sandbox.mode = mode;
                self.origins.insert("sandbox.mode", origin());
            } else {
                self.warnings.push(format!(
                    "{}: sandbox.mode = \"{}\" ignored: a workspace config can only tighten the sandbox (currently \"{}\")",
                    path.display(),
                    mode.as_str(),
                    self.sandbox.mode.as_str()
                ));
            }
        }
        match l.network {
            Some(false) => {
                self.sandbox.network = false;
                self.origins.insert("sandbox.network", origin());
            }
            Some(true) if !self.sandbox.network => self.warnings.push(format!(
                "{}: sandbox.network = true ignored: a workspace config can only tighten the sandbox",
                path.display()
            )),
            _ => {}
        }
        if l.writable.is_some_and(|w| !w.is_empty()) {
            self.warnings.push(format!(
                "{}: sandbox.writable ignored: a workspace config can only tighten the sandbox; add writable paths in {}",
                path.display(),
                self.user_config_display()
            ));
        }
    }

    /// The base URL, with the OpenAI default when only a model is set.
    pub fn effective_base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".to_string())
            .trim_end_matches('/')
            .to_string()
    }

    /// Checks that a model can be called; the error says exactly what to set.
    pub fn check_model(&self) -> Result<(), String> {
        if self.model.as_deref().unwrap_or("").is_empty() {
            return Err(format!(
                "no model configured: set TETHER_MODEL and TETHER_BASE_URL, or `model` and `base_url` in {} (or `model`/`baseUrl` in the editor's initializationOptions)",
                self.user_config_display()
            ));
        }
        let base = self.effective_base_url();
        if self.api_key.is_none() && !is_loopback_url(&base) {
            return Err(format!(
                "no API key for {base}: set TETHER_API_KEY (or OPENAI_API_KEY, or the variable named by `api_key_env`)"
            ));
        }
        Ok(())
    }

    /// Names of environment variables that hold Tether's own secrets; they
    /// are removed from the environment of commands the model runs.
    pub fn secret_env_names(&self) -> Vec<String> {
        let mut v = vec!["TETHER_API_KEY".to_string(), "OPENAI_API_KEY".to_string()];
        if let Some(n) = &self.api_key_env {
            v.push(n.clone());
        }
        v
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// The API key and the variable it came from.
fn resolve_api_key(
    env: &BTreeMap<String, String>,
    named: Option<&str>,
) -> (Option<Secret>, Option<Origin>) {
    if let Some(name) = named {
        if let Some(v) = env.get(name).filter(|v| !v.trim().is_empty()) {
            return (
                Some(Secret::new(v.trim())),
                Some(Origin::Env(name.to_string())),
            );
        }
    }
    for name in ["TETHER_API_KEY", "OPENAI_API_KEY"] {
        if let Some(v) = env.get(name).filter(|v| !v.trim().is_empty()) {
            return (
                Some(Secret::new(v.trim())),
                Some(Origin::Env(name.to_string())),
            );
        }
    }
    (None, None)
}

/// True for http(s) URLs whose host is on this machine (no key needed).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_merge_in_order_and_env_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_dir = dir.path().join("tether");
        std::fs::create_dir_all(&cfg_dir).expect("mkdir");
        std::fs::write(
            cfg_dir.join("config.toml"),
            "model = \"from-file\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[approval]\ntimeout_secs = 30\n",
        )
        .expect("write");
        let xdg = dir.path().to_string_lossy().to_string();
        let mut sources = Sources {
            env: env(&[("XDG_CONFIG_HOME", &xdg)]),
            init_options: Some(
                serde_json::json!({"model": "from-init", "approval": {"mode": "deny"}}),
            ),
            workspace_root: None,
        };
        let c = Config::load(&sources).expect("load");
        assert_eq!(c.model.as_deref(), Some("from-init"));
        assert_eq!(c.approval.timeout_secs, 30);
        assert_eq!(c.approval.mode, ApprovalMode::Deny);
        assert!(c.check_model().is_ok(), "loopback needs no key");
        sources.env.insert("TETHER_MODEL".into(), "from-env".into());
        let c = Config::load(&sources).expect("load");
        assert_eq!(c.model.as_deref(), Some("from-env"));
    }

    #[test]
    fn workspace_config_only_tightens() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".tether")).expect("mkdir");
        std::fs::write(
            dir.path().join(".tether/config.toml"),
            "[approval]\nmode = \"allow\"\n",
        )
        .expect("write");
        let sources = Sources {
            env: BTreeMap::new(),
            init_options: None,
            workspace_root: Some(dir.path().to_path_buf()),
        };
        let c = Config::load(&sources).expect("load");
        assert_eq!(c.approval.mode, ApprovalMode::Ask);
        assert!(c.warnings.iter().any(|w| w.contains("never loosen")));
    }

    #[test]
    fn read_outside_comes_from_init_options_and_the_workspace_only_tightens_it() {
        let c = Config::load(&Sources::default()).expect("load");
        assert_eq!(c.approval.read_outside, ApprovalMode::Ask, "default");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".tether")).expect("mkdir");
        std::fs::write(
            dir.path().join(".tether/config.toml"),
            "[approval]\nread_outside = \"allow\"\n",
        )
        .expect("write");
        let mut sources = Sources {
            env: BTreeMap::new(),
            init_options: Some(serde_json::json!({"approval": {"readOutside": "deny"}})),
            workspace_root: None,
        };
        let c = Config::load(&sources).expect("load");
        assert_eq!(c.approval.read_outside, ApprovalMode::Deny);
        sources.init_options = None;
        sources.workspace_root = Some(dir.path().to_path_buf());
        let c = Config::load(&sources).expect("load");
        assert_eq!(c.approval.read_outside, ApprovalMode::Ask, "not loosened");
        assert!(c.warnings.iter().any(|w| w.contains("read_outside")));
    }

    #[test]
    fn the_workspace_can_only_tighten_the_sandbox() {
        use crate::sandbox::Mode;
        let c = Config::load(&Sources::default()).expect("load");
        assert_eq!(c.sandbox.mode, Mode::WorkspaceWrite, "on by default");
        assert!(!c.sandbox.network, "no network by default");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".tether")).expect("mkdir");
        let ws_config = |text: &str| {
            std::fs::write(dir.path().join(".tether/config.toml"), text).expect("write");
            Config::load(&Sources {
                env: BTreeMap::new(),
                init_options: Some(serde_json::json!({"sandbox": {"network": true}})),
                workspace_root: Some(dir.path().to_path_buf()),
            })
            .expect("load")
        };
        let c = ws_config("[sandbox]\nmode = \"off\"\nwritable = [\"/\"]\n");
        assert_eq!(c.sandbox.mode, Mode::WorkspaceWrite, "not loosened");
        assert!(
            c.sandbox.writable.is_empty(),
            "no writable paths from the workspace"
        );
        assert!(c.sandbox.network, "the person's own setting stays");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let c = ws_config("[sandbox]\nmode = \"read-only\"\nnetwork = false\n");
        assert_eq!(c.sandbox.mode, Mode::ReadOnly, "tightened");
        assert!(!c.sandbox.network, "tightened");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn missing_model_names_the_settings() {
        let c = Config::load(&Sources::default()).expect("load");
        let e = c.check_model().expect_err("no model");
        assert!(e.contains("TETHER_MODEL") && e.contains("base_url"));
        assert!(is_loopback_url("http://localhost:8080/v1"));
        assert!(is_loopback_url("http://[::1]:1/v1"));
        assert!(!is_loopback_url("https://api.openai.com/v1"));
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("sk-very-secret");
        assert!(!format!("{s:?}").contains("very"));
    }
}
