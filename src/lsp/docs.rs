//! The document mirror: what the editor has open, with unsaved text.
//! didOpen/didChange/didClose are applied in order by the frontend's single
//! notification path; versions only go up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::tools::Buffers;

#[derive(Debug, Clone)]
struct Doc {
    version: i32,
    text: String,
}

/// Open documents by path. One lock, held only for map operations.
#[derive(Default)]
pub struct Documents {
    docs: RwLock<HashMap<PathBuf, Doc>>,
}

impl Documents {
    pub fn open(&self, path: PathBuf, version: i32, text: String) {
        if let Ok(mut d) = self.docs.write() {
            d.insert(path, Doc { version, text });
        }
    }

    /// Applies a full-text change; an older or equal version is ignored.
    pub fn change(&self, path: &Path, version: i32, text: String) {
        if let Ok(mut d) = self.docs.write() {
            match d.get_mut(path) {
                Some(doc) if version > doc.version => {
                    doc.version = version;
                    doc.text = text;
                }
                Some(doc) => tracing::warn!(
                    "ignored change to {} with version {version} (have {})",
                    path.display(),
                    doc.version
                ),
                None => {
                    d.insert(path.to_path_buf(), Doc { version, text });
                }
            }
        }
    }

    pub fn close(&self, path: &Path) {
        if let Ok(mut d) = self.docs.write() {
            d.remove(path);
        }
    }

    #[cfg(test)]
    fn version(&self, path: &Path) -> Option<i32> {
        self.docs.read().ok()?.get(path).map(|d| d.version)
    }
}

impl Buffers for Documents {
    fn open_text(&self, path: &Path) -> Option<String> {
        self.docs.read().ok()?.get(path).map(|d| d.text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_go_up() {
        let d = Documents::default();
        let p = PathBuf::from("/w/a.rs");
        d.open(p.clone(), 1, "one".into());
        d.change(&p, 3, "three".into());
        d.change(&p, 2, "two".into());
        assert_eq!(d.open_text(&p).as_deref(), Some("three"));
        assert_eq!(d.version(&p), Some(3));
        d.close(&p);
        assert_eq!(d.open_text(&p), None);
    }
}
