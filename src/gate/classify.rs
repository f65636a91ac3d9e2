//! TEMPORARY placeholder until the parsing classifier lands.
use std::path::{Path, PathBuf};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Safe,
    Ask,
    Forbidden,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    pub reason: String,
}
pub fn classify_command(script: &str) -> Verdict {
    if script.contains("rm -rf /") && script.trim_end().ends_with('/') {
        return Verdict {
            class: Class::Forbidden,
            reason: "deletes /".into(),
        };
    }
    if script.contains("rm -r") || script.contains("sudo") || script.contains("kill") {
        return Verdict {
            class: Class::Ask,
            reason: format!("recursive delete ({script})"),
        };
    }
    Verdict {
        class: Class::Safe,
        reason: "read-only or ordinary build command".into(),
    }
}
pub fn classify_edit(path: &Path, roots: &[PathBuf]) -> Verdict {
    if roots.iter().any(|r| path.starts_with(r))
        && !path.components().any(|c| c.as_os_str() == ".git")
    {
        Verdict {
            class: Class::Safe,
            reason: "inside the workspace".into(),
        }
    } else {
        Verdict {
            class: Class::Ask,
            reason: "outside the workspace".into(),
        }
    }
}
