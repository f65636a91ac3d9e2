//! The MCP servers an ACP client gives in `session/new` / `session/load`,
//! as Tether's MCP server config: stdio (`command`, `args`, `env`) and
//! streamable HTTP (`url`, `headers`). SSE servers are not supported and
//! are left out with a warning. Names are made usable as tool-name prefixes
//! (letters, digits, `-`, `_`; no `__`; at most 32), kept unique.

use std::collections::BTreeMap;

use agent_client_protocol_schema as acp;

use crate::mcp::McpServerConfig;

fn usable_name(name: &str, taken: &BTreeMap<String, McpServerConfig>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while base.contains("__") {
        base = base.replace("__", "_");
    }
    let base = base.trim_matches('_').chars().take(28).collect::<String>();
    let base = if base.is_empty() {
        "mcp".to_string()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains_key(&candidate) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

/// The client's servers, by usable name.
pub fn servers(list: &[acp::McpServer]) -> BTreeMap<String, McpServerConfig> {
    let mut out = BTreeMap::new();
    for s in list {
        match s {
            acp::McpServer::Stdio(s) => {
                let name = usable_name(&s.name, &out);
                out.insert(
                    name,
                    McpServerConfig {
                        command: Some(s.command.display().to_string()),
                        args: s.args.clone(),
                        env: s
                            .env
                            .iter()
                            .map(|e| (e.name.clone(), e.value.clone()))
                            .collect(),
                        ..Default::default()
                    },
                );
            }
            acp::McpServer::Http(s) => {
                let name = usable_name(&s.name, &out);
                out.insert(
                    name,
                    McpServerConfig {
                        url: Some(s.url.clone()),
                        headers: s
                            .headers
                            .iter()
                            .map(|h| (h.name.clone(), h.value.clone()))
                            .collect(),
                        ..Default::default()
                    },
                );
            }
            acp::McpServer::Sse(s) => {
                tracing::warn!(
                    "MCP server `{}` uses the SSE transport, which Tether does not speak; left out",
                    s.name
                );
            }
            _ => tracing::warn!("an MCP server of a transport Tether does not know; left out"),
        }
    }
    out
}

/// What identifies a set of servers (to share an engine between sessions
/// that give the same ones).
pub fn key(servers: &BTreeMap<String, McpServerConfig>) -> String {
    servers
        .iter()
        .map(|(n, s)| format!("{n}\u{0}{s:?}"))
        .collect::<Vec<_>>()
        .join("\u{1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_servers_become_usable_config_entries() {
        let list: Vec<acp::McpServer> = serde_json::from_value(json!([
            {"name": "my time", "command": "/bin/time-server", "args": ["-v"], "env": [{"name": "TZ", "value": "UTC"}]},
            {"type": "http", "name": "my time", "url": "http://127.0.0.1:9/mcp", "headers": [{"name": "X-A", "value": "b"}]},
            {"type": "sse", "name": "old", "url": "http://127.0.0.1:9/sse", "headers": []},
            {"name": "a__b", "command": "x", "args": [], "env": []}
        ]))
        .expect("servers");
        let s = servers(&list);
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            ["a_b", "my_time", "my_time-2"]
        );
        assert_eq!(s["my_time"].command.as_deref(), Some("/bin/time-server"));
        assert_eq!(s["my_time"].env["TZ"], "UTC");
        assert_eq!(
            s["my_time-2"].url.as_deref(),
            Some("http://127.0.0.1:9/mcp")
        );
        assert_eq!(s["my_time-2"].headers["X-A"], "b");
        for (name, cfg) in &s {
            assert!(cfg.check(name).is_ok(), "{name}");
        }
    }
}
