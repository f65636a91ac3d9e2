//! What a plain LSP client — one without a Tether plugin, such as Helix —
//! needs to see a conversation: the `tether.ask` transcript file and denial
//! advice that is true for the person's configuration.
//!
//! A client takes `tether/update` when it declares
//! `capabilities.experimental.tether.updates: true` in `initialize` (the VS
//! Code extension and the Neovim plugin do). Every other client drops those
//! notifications, so each `tether.ask` turn is also written into
//! [`TRANSCRIPT`] in the workspace, a chat file ([`super::chat`]) that the
//! editor is asked to open (`window/showDocument`) or told about
//! (`window/showMessage`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{Config, Origin};

/// The transcript of `tether.ask` turns, relative to the workspace root.
pub const TRANSCRIPT: &str = ".tether/ask.tether.md";

/// Width of the message line advice must fit in (an 80-column terminal).
pub const STATUS_WIDTH: usize = 78;

/// Whether the client declared that it handles `tether/update`.
pub fn takes_updates(capabilities: &Value) -> bool {
    capabilities
        .pointer("/experimental/tether/updates")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Whether the client's Tether plugin saves a buffer that was clean before
/// an agent edit (`capabilities.experimental.tether.savesAgentEdits`), so
/// that commands see the edit (docs/PROTOCOL.md, "Agent edits and open
/// buffers").
pub fn saves_agent_edits(capabilities: &Value) -> bool {
    capabilities
        .pointer("/experimental/tether/savesAgentEdits")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The editor family, for advice in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorKind {
    Helix,
    Neovim,
    Other,
}

impl EditorKind {
    pub fn from_client_name(name: Option<&str>) -> EditorKind {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("helix") => EditorKind::Helix,
            Some(n) if n.contains("neovim") || n == "nvim" => EditorKind::Neovim,
            _ => EditorKind::Other,
        }
    }
}

/// Why a command was denied in an editor that shows no approval dialog, and
/// what to change — where the policy was actually set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialAdvice {
    /// The reason recorded for the model, the transcript and the store.
    pub reason: String,
    /// What to change, short (without the command).
    fix: String,
}

impl DenialAdvice {
    pub fn new(cfg: &Config, editor: EditorKind) -> DenialAdvice {
        let origin = cfg.origin("approval.mode");
        let mode = format!("{:?}", cfg.approval.mode).to_lowercase();
        let user_file = tilde(&cfg.user_config_display());
        let (fix, where_long) = match &origin {
            Origin::InitOptions => match editor {
                EditorKind::Helix => (
                    "set approval mode \"allow\" in languages.toml".to_string(),
                    "the `config` of [language-server.tether] in Helix's languages.toml \
                     (initializationOptions)"
                        .to_string(),
                ),
                EditorKind::Neovim => (
                    "set approval.mode \"allow\" in init_options".to_string(),
                    "the Tether client's init_options (initializationOptions)".to_string(),
                ),
                EditorKind::Other => (
                    "set approval.mode \"allow\" in initializationOptions".to_string(),
                    "the editor's initializationOptions for tether".to_string(),
                ),
            },
            Origin::File(p) => {
                let p = tilde(&p.display().to_string());
                (format!("set approval.mode \"allow\" in {p}"), p)
            }
            Origin::Workspace(p) => {
                let p = tilde(&p.display().to_string());
                (format!("set approval.mode \"allow\" in {p}"), p)
            }
            Origin::Env(v) => (format!("set {v}=allow"), format!("the environment ({v})")),
            Origin::Default => (
                format!("add approval.mode \"allow\" to {user_file}"),
                String::new(),
            ),
        };
        let (origin_text, change_in) = if where_long.is_empty() {
            ("the default".to_string(), user_file)
        } else {
            (format!("set in {where_long}"), where_long)
        };
        let reason = format!(
            "this editor cannot show approval dialogs; approval.mode is \"{mode}\" ({origin_text}): \
             to let such commands run, set it to \"allow\" in {change_in} (forbidden commands never run), \
             or ask in a chat file (*.tether.md) and approve there"
        );
        DenialAdvice { reason, fix }
    }

    /// One line for the editor's message area: the command and the fix,
    /// within [`STATUS_WIDTH`] (the command is shortened first, to no less
    /// than 16 characters).
    pub fn status_line(&self, command: &str) -> String {
        let command = crate::term::printable_line(command);
        let fixed = "Tether denied ``: ".chars().count() + self.fix.chars().count();
        // The command stays recognisable even when a long config path
        // pushes the line past the width.
        let room = STATUS_WIDTH.saturating_sub(fixed).max(16);
        let command = crate::tools::first_line(&command, room.saturating_sub(1));
        let command = crate::text::prefix(&command, crate::text::Max::Chars(room));
        format!("Tether denied `{command}`: {}", self.fix)
    }
}

/// `~/…` for a path under `$HOME`, as a person types it.
fn tilde(p: &str) -> String {
    match std::env::var("HOME") {
        Ok(h) if !h.is_empty() && p.starts_with(&format!("{h}/")) => {
            format!("~{}", &p[h.len()..])
        }
        _ => p.to_string(),
    }
}

/// The transcript's path in a workspace.
pub fn transcript_path(root: &Path) -> PathBuf {
    root.join(TRANSCRIPT)
}

/// What goes into the transcript before a turn's reply: the session marker
/// when the file does not already end on this session, then the prompt under
/// `## You` (reusing a trailing empty `## You` that the last turn left).
pub fn transcript_intro(existing: &str, session_id: &str, prompt: &str) -> String {
    let mut out = String::new();
    let trimmed = existing.trim_end();
    let same_session = super::chat::session_of(existing).as_deref() == Some(session_id);
    let mut ends_on_you = trimmed.ends_with(super::chat::YOU);
    // Exactly one blank line before what comes next.
    let gap = match existing.len() - existing.trim_end_matches('\n').len() {
        0 => "\n\n",
        1 => "\n",
        _ => "",
    };
    if !same_session {
        if !trimmed.is_empty() {
            out.push_str(gap);
        }
        out.push_str(&super::chat::marker(session_id));
        ends_on_you = false;
    }
    if ends_on_you {
        // The file ends with an empty `## You`: the prompt goes under it.
        if !existing.ends_with("\n\n") {
            out.push_str(if existing.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            });
        }
    } else {
        if same_session && !trimmed.is_empty() {
            out.push_str(gap);
        }
        out.push_str(super::chat::YOU);
        out.push_str("\n\n");
    }
    out.push_str(crate::term::printable(prompt.trim()).as_ref());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sources;
    use std::collections::BTreeMap;

    fn config(init: Option<Value>, env: &[(&str, &str)]) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e.insert(
            "XDG_CONFIG_HOME".into(),
            dir.path().join("cfg").display().to_string(),
        );
        e.insert(
            "XDG_DATA_HOME".into(),
            dir.path().join("data").display().to_string(),
        );
        Config::load(&Sources {
            env: e,
            init_options: init,
            workspace_root: None,
        })
        .expect("config")
    }

    #[test]
    fn advice_names_the_source_that_set_the_policy() {
        let helix = config(Some(serde_json::json!({"approval": {"mode": "ask"}})), &[]);
        let a = DenialAdvice::new(&helix, EditorKind::Helix);
        assert!(a.reason.contains("languages.toml"), "{}", a.reason);
        assert!(!a.reason.contains("config.toml"), "{}", a.reason);
        let line = a.status_line("rm -rf build");
        assert_eq!(
            line,
            "Tether denied `rm -rf build`: set approval mode \"allow\" in languages.toml"
        );
        let default = config(None, &[]);
        let a = DenialAdvice::new(&default, EditorKind::Helix);
        assert!(a.status_line("ls").contains("config.toml"), "{a:?}");
        assert!(a.reason.contains("(the default)"), "{}", a.reason);
        assert!(a.reason.contains("config.toml"), "{}", a.reason);
    }

    #[test]
    fn advice_fits_an_80_column_message_line() {
        let helix = config(Some(serde_json::json!({"approval": {"mode": "ask"}})), &[]);
        let a = DenialAdvice::new(&helix, EditorKind::Helix);
        let long = format!("rm -rf {}", "very/long/path/".repeat(20));
        let line = a.status_line(&long);
        assert!(line.chars().count() <= STATUS_WIDTH, "{line}");
        assert!(line.starts_with("Tether denied `rm -rf very"), "{line}");
        assert!(line.ends_with("in languages.toml"), "{line}");
        let line = a.status_line("printf '\u{1b}[2J'\nrm -rf /tmp/x");
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }

    #[test]
    fn the_transcript_adds_markers_and_prompts_without_blank_runs() {
        let first = transcript_intro("", "s1", "why?");
        assert_eq!(first, "<!-- tether-session: s1 -->\n## You\n\nwhy?\n");
        let after_turn = format!("{first}\n## Tether\n\nbecause\n\n## You\n\n");
        assert_eq!(transcript_intro(&after_turn, "s1", "and?"), "and?\n");
        let other = transcript_intro(&after_turn, "s2", "new");
        assert_eq!(other, "<!-- tether-session: s2 -->\n## You\n\nnew\n");
        let text = format!("{after_turn}{other}");
        assert_eq!(super::super::chat::session_of(&text).as_deref(), Some("s2"));
        // The person edited the file: the prompt still gets its heading.
        assert_eq!(
            transcript_intro("<!-- tether-session: s1 -->\nnotes", "s1", "q"),
            "\n\n## You\n\nq\n"
        );
    }

    #[test]
    fn only_a_declared_plugin_takes_updates() {
        assert!(takes_updates(
            &serde_json::json!({"experimental": {"tether": {"updates": true}}})
        ));
        for caps in [
            serde_json::json!({}),
            serde_json::json!({"experimental": null}),
            serde_json::json!({"experimental": {"tether": {"updates": "yes"}}}),
        ] {
            assert!(!takes_updates(&caps), "{caps}");
        }
        for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients"))
            .expect("captures")
        {
            let p = f.expect("entry").path();
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
            let caps = v.pointer("/capabilities").expect("capabilities");
            assert!(!takes_updates(caps), "{} takes no updates", p.display());
        }
    }

    #[test]
    fn only_a_declared_plugin_saves_agent_edits() {
        assert!(saves_agent_edits(&serde_json::json!(
            {"experimental": {"tether": {"updates": true, "savesAgentEdits": true}}}
        )));
        for caps in [
            serde_json::json!({}),
            serde_json::json!({"experimental": {"tether": {"updates": true}}}),
            serde_json::json!({"experimental": {"tether": {"savesAgentEdits": "yes"}}}),
        ] {
            assert!(!saves_agent_edits(&caps), "{caps}");
        }
    }
}
