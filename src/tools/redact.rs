//! Redaction of secrets from tool output before it is stored or sent to the
//! model: the values of environment variables named like `*_KEY`, `*_TOKEN`,
//! `*_SECRET`, `*PASSWORD*`, and Tether's own API key.

use std::collections::BTreeMap;

/// What a secret value is replaced with.
pub const MARK: &str = "[REDACTED]";

/// Replaces known secret values with [`MARK`].
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// Whether an environment variable's name says it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.ends_with("_TOKEN")
        || n.ends_with("_SECRET")
        || n.contains("PASSWORD")
        || n.ends_with("_API_KEY")
        || n == "TOKEN"
}

impl Redactor {
    /// Collects secret values from an environment (short values are ignored:
    /// redacting "1" would mangle every output).
    pub fn from_env(env: &BTreeMap<String, String>, extra: &[&str]) -> Redactor {
        let mut secrets: Vec<String> = env
            .iter()
            .filter(|(k, v)| is_secret_name(k) && v.trim().len() >= 6)
            .map(|(_, v)| v.trim().to_string())
            .collect();
        secrets.extend(extra.iter().filter(|s| s.len() >= 6).map(|s| s.to_string()));
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MARK);
            }
        }
        out
    }

    /// Whether `text` holds a secret value (the model was shown [`MARK`] there).
    pub fn finds_secret(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_values_of_secret_names_only() {
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
        let out = r.redact(
            "token ghp_abcdef123456 pw hunter2hunter2 path /usr/bin:/bin key sk-tether-key 1",
        );
        assert_eq!(
            out,
            "token [REDACTED] pw [REDACTED] path /usr/bin:/bin key [REDACTED] 1"
        );
    }
}
