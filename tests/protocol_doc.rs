//! The wire protocol is one checked artifact: `src/protocol.rs` (the Rust
//! types), `docs/PROTOCOL.md` (the contract for editor integrations) and
//! `editors/vscode/src/protocol.ts` (the extension's typed mirror) change
//! together. Each of the two mirrors records a hash of protocol.rs; a change
//! to protocol.rs without a look at both fails here, saying what to do.
//! (The same idea as rust-analyzer's check of `lsp_ext.rs` against its doc.)

use std::path::Path;

/// FNV-1a, 64 bits, over the text with `\r\n` read as `\n`: stable across
/// platforms, Rust versions and checkouts.
fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.replace("\r\n", "\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// The hash a mirror records on its `protocol.rs hash:` line, if any.
fn recorded(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = &l[l.find("protocol.rs hash:")? + "protocol.rs hash:".len()..];
        let h: String = rest
            .trim()
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        (!h.is_empty()).then_some(h)
    })
}

/// What is wrong with `mirror` (its text at `rel`) for protocol.rs's `hash`.
fn mismatch(rel: &str, mirror: &str, hash: &str) -> Option<String> {
    match recorded(mirror) {
        Some(h) if h == hash => None,
        Some(h) => Some(format!(
            "src/protocol.rs changed (its hash is {hash}, {rel} records {h}): update {rel} \
             for the change, then set its `protocol.rs hash:` line to {hash}"
        )),
        None => Some(format!(
            "{rel} has no `protocol.rs hash:` line; add one with {hash}"
        )),
    }
}

#[test]
fn protocol_docs_and_the_typescript_mirror_follow_protocol_rs() {
    let hash = fnv1a(&read("src/protocol.rs"));
    let problems: Vec<String> = ["docs/PROTOCOL.md", "editors/vscode/src/protocol.ts"]
        .into_iter()
        .filter_map(|rel| mismatch(rel, &read(rel), &hash))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_a_change_and_a_missing_line() {
    let hash = fnv1a("pub struct A;\n");
    assert_eq!(
        hash,
        fnv1a("pub struct A;\r\n"),
        "line endings do not count"
    );
    assert_ne!(hash, fnv1a("pub struct A; \n"));
    let doc = format!("# Protocol\n<!-- protocol.rs hash: {hash} -->\n");
    assert_eq!(mismatch("doc", &doc, &hash), None);
    let changed = fnv1a("pub struct A { x: u8 }\n");
    let told = mismatch("doc", &doc, &changed).expect("a change is caught");
    assert!(
        told.contains(&changed) && told.contains("update doc"),
        "{told}"
    );
    assert!(mismatch("doc", "# Protocol\n", &hash).is_some());
}
