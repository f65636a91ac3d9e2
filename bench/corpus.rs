//! What the classifier benchmarks (`examples/classify_bench.rs`,
//! `examples/classify_shapes.rs`) read and build: the rows of
//! `tests/corpus/commands.toml`, and scripts of a piece repeated.
//!
//! Each benchmark uses a part, hence the allow below.
#![allow(dead_code)]

/// One corpus row: the command and the class it is expected to get.
pub struct Row {
    pub cmd: String,
    pub expect: String,
}

/// Every row of the corpus, in file order (none, said on stderr, if the file
/// cannot be read).
pub fn rows() -> Vec<Row> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/commands.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return Vec::new();
        }
    };
    let value: toml::Value = match toml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cannot parse {}: {e}", path.display());
            return Vec::new();
        }
    };
    value
        .get("case")
        .and_then(|c| c.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    Some(Row {
                        cmd: r.get("cmd")?.as_str()?.to_string(),
                        expect: r.get("expect")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `piece` repeated until the script is at least `bytes` long.
pub fn repeat_to(piece: &str, bytes: usize) -> String {
    piece.repeat(bytes / piece.len().max(1) + 1)
}
