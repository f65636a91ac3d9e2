//! `[mcp_servers.NAME]` in the user's config (and `mcpServers` in the
//! editor's `initializationOptions`): how to reach one MCP server and which of
//! its tools the model may see.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Whether a tool of a server asks before it runs, whatever its hints say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolApproval {
    /// Ask the person every time (unless allowed for the session or always).
    Ask,
    /// Run without asking.
    Allow,
}

/// Per-tool settings: `[mcp_servers.NAME.tools.TOOL]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolOverride {
    pub approval: Option<ToolApproval>,
}

/// One MCP server: a command (stdio) or a URL (streamable HTTP).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerConfig {
    /// stdio: the program to run.
    pub command: Option<String>,
    pub args: Vec<String>,
    /// Variables added to the server's environment.
    pub env: BTreeMap<String, String>,
    /// Working directory (relative to the workspace root); default the root.
    pub cwd: Option<PathBuf>,
    /// Streamable HTTP: the endpoint.
    pub url: Option<String>,
    /// Extra HTTP headers (not for secrets: use `bearer_token_env_var`).
    #[serde(alias = "httpHeaders", alias = "http_headers")]
    pub headers: BTreeMap<String, String>,
    /// The environment variable that holds the bearer token (never the token itself).
    #[serde(alias = "bearerTokenEnvVar")]
    pub bearer_token_env_var: Option<String>,
    pub enabled: bool,
    /// Only these tools are shown to the model (all when absent).
    #[serde(alias = "enabledTools")]
    pub enabled_tools: Option<Vec<String>>,
    /// These tools are never shown.
    #[serde(alias = "disabledTools")]
    pub disabled_tools: Vec<String>,
    #[serde(alias = "startupTimeoutSecs")]
    pub startup_timeout_secs: u64,
    #[serde(alias = "toolTimeoutSecs")]
    pub tool_timeout_secs: u64,
    /// Per-tool overrides, by the server's tool name.
    pub tools: BTreeMap<String, ToolOverride>,
    /// `"stdio"`, `"http"`…, as other clients' `mcpServers` entries carry it;
    /// the transport is told by `command` or `url`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// stdio: run under the command sandbox's policy (`[sandbox]`: writes
    /// only in the workspace and a temp dir); `false` runs the server with
    /// the person's full rights.
    pub sandbox: bool,
    /// stdio, sandboxed: the network on for this server (default: the
    /// `[sandbox] network` setting, off unless set).
    pub network: Option<bool>,
    /// stdio, sandboxed: more paths this server may write (`~` is the home
    /// directory), e.g. `~/.npm` for a server started with `npx`.
    pub writable: Vec<PathBuf>,
}

impl Default for McpServerConfig {
    fn default() -> Self {
        McpServerConfig {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            headers: BTreeMap::new(),
            bearer_token_env_var: None,
            enabled: true,
            enabled_tools: None,
            disabled_tools: Vec::new(),
            startup_timeout_secs: 30,
            tool_timeout_secs: 120,
            tools: BTreeMap::new(),
            kind: None,
            sandbox: true,
            network: None,
            writable: Vec::new(),
        }
    }
}

impl McpServerConfig {
    /// Why this entry cannot be used, if it cannot.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if !valid_server_name(name) {
            return Err(format!(
                "MCP server name `{name}` is not usable: use 1-32 letters, digits, `-` or `_` (no `__`)"
            ));
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => Err(format!(
                "MCP server `{name}` has both `command` and `url`: give one"
            )),
            (None, None) => Err(format!(
                "MCP server `{name}` has neither `command` (stdio) nor `url` (streamable HTTP)"
            )),
            (Some(c), None) if c.trim().is_empty() => {
                Err(format!("MCP server `{name}` has an empty `command`"))
            }
            (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(
                format!("MCP server `{name}`: `url` must start with http:// or https://"),
            ),
            _ => Ok(()),
        }
    }

    /// Whether the model may see `tool` of this server.
    pub fn tool_enabled(&self, tool: &str) -> bool {
        if self.disabled_tools.iter().any(|t| t == tool) {
            return false;
        }
        match &self.enabled_tools {
            Some(list) => list.iter().any(|t| t == tool),
            None => true,
        }
    }

    /// What the person reads about this server: the command line or the URL.
    pub fn describe(&self) -> String {
        match (&self.command, &self.url) {
            (Some(c), _) => {
                let mut s = c.clone();
                for a in &self.args {
                    s.push(' ');
                    s.push_str(a);
                }
                if !self.sandbox {
                    s.push_str(" (outside the sandbox)");
                } else {
                    let mut more: Vec<String> = Vec::new();
                    if self.network == Some(true) {
                        more.push("network".into());
                    }
                    for w in &self.writable {
                        more.push(format!("writes to {}", w.display()));
                    }
                    if !more.is_empty() {
                        s.push_str(&format!(" (in the sandbox, with {})", more.join(", ")));
                    }
                }
                s
            }
            (None, Some(u)) => u.clone(),
            (None, None) => "(nothing to run)".into(),
        }
    }
}

/// Server names become the prefix of `NAME__TOOL`: letters, digits, `-`, `_`,
/// without the `__` separator, at most 32 bytes.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.contains("__")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_tool_names_are_refused() {
        assert!(valid_server_name("fs"));
        assert!(valid_server_name("git-2_x"));
        for bad in ["", "a__b", "a b", "a/b", "ü", &"x".repeat(33)] {
            assert!(!valid_server_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_entry_needs_exactly_one_transport() {
        let mut c = McpServerConfig::default();
        assert!(c.check("x").is_err());
        c.command = Some("srv".into());
        assert!(c.check("x").is_ok());
        c.url = Some("http://127.0.0.1:1/mcp".into());
        assert!(c.check("x").is_err());
        c.command = None;
        assert!(c.check("x").is_ok());
        c.url = Some("file:///etc/passwd".into());
        assert!(c.check("x").is_err());
    }

    #[test]
    fn enabled_and_disabled_tools_filter() {
        let c = McpServerConfig {
            enabled_tools: Some(vec!["a".into(), "b".into()]),
            disabled_tools: vec!["b".into()],
            ..Default::default()
        };
        assert!(c.tool_enabled("a"));
        assert!(!c.tool_enabled("b"));
        assert!(!c.tool_enabled("c"));
    }
}

#[cfg(test)]
mod layer_tests {
    use crate::config::{Config, Sources};

    /// The user's file and `initializationOptions` add servers; the
    /// workspace's own file only proposes them (kept apart, asked about).
    #[test]
    fn servers_from_each_source() {
        let home = tempfile::tempdir().expect("home");
        let ws = tempfile::tempdir().expect("ws");
        std::fs::create_dir_all(home.path().join("tether")).expect("dir");
        std::fs::write(
            home.path().join("tether/config.toml"),
            "[mcp_servers.fs]\ncommand = \"srv\"\nargs = [\"-x\"]\ntool_timeout_secs = 5\n\
             [mcp_servers.fs.tools.write]\napproval = \"ask\"\n",
        )
        .expect("user config");
        std::fs::create_dir_all(ws.path().join(".tether")).expect("dir");
        std::fs::write(
            ws.path().join(".tether/config.toml"),
            "[mcp_servers.repo]\nurl = \"http://127.0.0.1:9/mcp\"\n",
        )
        .expect("workspace config");
        let mut sources = Sources::default();
        sources
            .env
            .insert("XDG_CONFIG_HOME".into(), home.path().display().to_string());
        sources.init_options = Some(serde_json::json!({"mcpServers": {
            "web": {"url": "https://x.example/mcp", "bearerTokenEnvVar": "WEB_TOKEN", "enabledTools": ["a"]}
        }}));
        sources.workspace_root = Some(ws.path().to_path_buf());
        let cfg = Config::load(&sources).expect("load");
        let fs = &cfg.mcp_servers["fs"];
        assert_eq!(fs.command.as_deref(), Some("srv"));
        assert_eq!(fs.tool_timeout_secs, 5);
        assert_eq!(fs.startup_timeout_secs, 30);
        assert_eq!(fs.tools["write"].approval, Some(super::ToolApproval::Ask));
        let web = &cfg.mcp_servers["web"];
        assert_eq!(web.bearer_token_env_var.as_deref(), Some("WEB_TOKEN"));
        assert_eq!(web.enabled_tools, Some(vec!["a".to_string()]));
        assert!(
            !cfg.mcp_servers.contains_key("repo"),
            "not trusted as the user's"
        );
        assert!(cfg.workspace_mcp_servers.contains_key("repo"));
    }

    #[test]
    fn a_token_in_the_file_is_refused() {
        let err = toml::from_str::<crate::config::Layer>(
            "[mcp_servers.x]\nurl = \"https://x\"\nbearer_token = \"secret\"\n",
        )
        .expect_err("unknown field");
        assert!(err.to_string().contains("bearer_token"), "{err}");
    }
}
