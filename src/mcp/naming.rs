//! How an MCP tool is named to the model: `SERVER__TOOL`, at most 64
//! characters of `[A-Za-z0-9_-]` (what the OpenAI-compatible APIs accept).

/// The longest tool name the model APIs accept.
pub const MAX_NAME: usize = 64;

/// The separator between the server's and the tool's names.
pub const SEP: &str = "__";

/// `SERVER__TOOL` for the model. Characters the APIs refuse become `_`; a
/// name that would pass [`MAX_NAME`] (or was changed) keeps a short hash of
/// the real tool name, so two tools never share a name.
pub fn exposed(server: &str, tool: &str) -> String {
    let clean: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let plain = format!("{server}{SEP}{clean}");
    if clean == tool && plain.len() <= MAX_NAME {
        return plain;
    }
    let hash = format!("{:08x}", fnv1a(tool.as_bytes()) as u32);
    let room = MAX_NAME.saturating_sub(server.len() + SEP.len() + 1 + hash.len());
    let cut: String = clean.chars().take(room).collect();
    format!("{server}{SEP}{cut}_{hash}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(exposed("fs", "write_file"), "fs__write_file");
        assert_eq!(exposed("everything", "get-sum"), "everything__get-sum");
    }

    #[test]
    fn odd_or_long_names_fit_and_stay_distinct() {
        let a = exposed("srv", "a.b");
        let b = exposed("srv", "a/b");
        assert_ne!(a, b);
        assert!(a.starts_with("srv__a_b_"), "{a}");
        let long = "x".repeat(100);
        let n = exposed("server", &long);
        assert!(n.len() <= MAX_NAME, "{n}");
        assert_ne!(n, exposed("server", &"x".repeat(99)));
        for n in [a, b, n] {
            assert!(n
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        }
    }
}
