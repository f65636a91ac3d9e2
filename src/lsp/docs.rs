//! The document mirror (what the editor has open, with unsaved text) and the
//! way edits reach open buffers (`workspace/applyEdit`).
//!
//! didOpen/didChange/didClose are applied in arrival order by the frontend's
//! notification path; versions only go up. Edits are sent from the tool's
//! task, never from a request handler, with a timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tower_lsp_server::ls_types::{
    ApplyWorkspaceEditParams, DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier,
    Position, Range, TextDocumentEdit, TextEdit, Uri, WorkspaceEdit,
};
use tower_lsp_server::Client;

use crate::tools::{BufferEdit, Buffers};

#[derive(Debug, Clone)]
struct Doc {
    uri: String,
    version: i32,
    text: String,
}

/// Open documents by path. One lock, held only for map operations.
#[derive(Default)]
pub struct Documents {
    docs: RwLock<HashMap<PathBuf, Doc>>,
}

impl Documents {
    pub fn open(&self, path: PathBuf, uri: String, version: i32, text: String) {
        if let Ok(mut d) = self.docs.write() {
            d.insert(path, Doc { uri, version, text });
        }
    }

    /// Applies a full-text change; an older or equal version is ignored.
    pub fn change(&self, path: &Path, uri: String, version: i32, text: String) {
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
                    d.insert(path.to_path_buf(), Doc { uri, version, text });
                }
            }
        }
    }

    pub fn close(&self, path: &Path) {
        if let Ok(mut d) = self.docs.write() {
            d.remove(path);
        }
    }

    fn get(&self, path: &Path) -> Option<Doc> {
        self.docs.read().ok()?.get(path).cloned()
    }

    /// Records text the editor accepted through an applied edit. The
    /// editor's own didChange for it carries the next version (or a later
    /// one, which then wins), so the version is advanced here too: the next
    /// versioned edit is not refused as stale while that didChange is in flight.
    fn set_text(&self, path: &Path, based_on: i32, text: String) {
        if let Ok(mut d) = self.docs.write() {
            if let Some(doc) = d.get_mut(path) {
                // If the editor's didChange already arrived, it is the truth.
                if doc.version == based_on {
                    doc.text = text;
                    doc.version = based_on + 1;
                }
            }
        }
    }

    /// Whether `path` is open in the editor.
    pub fn is_open(&self, path: &Path) -> bool {
        self.get(path).is_some()
    }
}

impl Buffers for Documents {
    fn open_text(&self, path: &Path) -> Option<String> {
        self.get(path).map(|d| d.text)
    }
}

/// How the client counts columns (negotiated at initialize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

/// The LSP position of byte offset `byte` in `text`.
pub fn position(text: &str, byte: usize, enc: Encoding) -> Position {
    let byte = crate::model::floor_char_boundary(text, byte);
    let before = &text[..byte];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col_text = &text[line_start..byte];
    let character = match enc {
        Encoding::Utf8 => col_text.len(),
        Encoding::Utf16 => col_text.encode_utf16().count(),
        Encoding::Utf32 => col_text.chars().count(),
    } as u32;
    Position { line, character }
}

/// Open buffers as the engine sees them, with edits sent to the editor.
pub struct EditorBuffers {
    pub docs: Arc<Documents>,
    pub client: Client,
    /// `workspace.applyEdit`
    pub can_apply: bool,
    /// `workspace.workspaceEdit.documentChanges`: send versioned edits.
    pub document_changes: bool,
    pub encoding: Encoding,
    /// `experimental.tether.savesAgentEdits`: the plugin saves a buffer that
    /// was clean before an agent edit, before it answers the edit.
    pub saves_agent_edits: bool,
}

/// The `label` of a `workspace/applyEdit` that carries an agent's file edit
/// (`edit_file`, `write_file`). A Tether plugin saves such an edit into a
/// buffer that was clean before it; chat-file and transcript writes carry
/// [`TEXT_LABEL`] and are never saved (docs/PROTOCOL.md).
pub const AGENT_EDIT_LABEL: &str = "Tether: agent edit";
/// The `label` of Tether's writes into a chat file or the transcript.
pub const TEXT_LABEL: &str = "Tether";

const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

impl EditorBuffers {
    /// Builds the workspace edit for `edit` on `doc`.
    fn workspace_edit(
        &self,
        doc: &Doc,
        edit: &BufferEdit,
        versioned: bool,
    ) -> Result<WorkspaceEdit, String> {
        let uri: Uri = doc
            .uri
            .parse()
            .map_err(|_| format!("invalid document uri {}", doc.uri))?;
        let text_edit = TextEdit {
            range: Range {
                start: position(&doc.text, edit.start, self.encoding),
                end: position(&doc.text, edit.end, self.encoding),
            },
            new_text: edit.new_text.clone(),
        };
        Ok(if self.document_changes {
            WorkspaceEdit {
                document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri,
                        version: versioned.then_some(doc.version),
                    },
                    edits: vec![OneOf::Left(text_edit)],
                }])),
                ..Default::default()
            }
        } else {
            WorkspaceEdit {
                changes: Some(HashMap::from([(uri, vec![text_edit])])),
                ..Default::default()
            }
        })
    }
}

impl Buffers for EditorBuffers {
    fn open_text(&self, path: &Path) -> Option<String> {
        self.docs.open_text(path)
    }

    fn can_apply(&self) -> bool {
        self.can_apply
    }

    fn saves_agent_edits(&self) -> bool {
        self.saves_agent_edits
    }

    fn apply_edit(&self, path: &Path, edit: BufferEdit) -> BoxFuture<'static, Result<(), String>> {
        self.send_edit(path, edit, true, AGENT_EDIT_LABEL)
    }
}

impl EditorBuffers {
    /// Appends `text` at the end of `path`: in the editor's buffer when it is
    /// open there (unversioned, so typing elsewhere does not make it fail),
    /// else on disk.
    pub async fn append(&self, path: &Path, text: &str) -> Result<(), String> {
        match self.docs.get(path) {
            Some(doc) if self.can_apply => {
                let end = doc.text.len();
                self.send_edit(
                    path,
                    BufferEdit {
                        start: end,
                        end,
                        new_text: text.to_string(),
                    },
                    false,
                    TEXT_LABEL,
                )
                .await
            }
            _ => {
                use tokio::io::AsyncWriteExt;
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                // A tokio `File` hands the bytes to a background write:
                // without `flush` the next read of the file (the transcript
                // reads it back at once) may not see them yet.
                let write = async {
                    f.write_all(text.as_bytes()).await?;
                    f.flush().await
                };
                write
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
        }
    }

    /// Inserts `text` at the very start of an open buffer (or the file).
    pub async fn prepend(&self, path: &Path, text: &str) -> Result<(), String> {
        match self.docs.get(path) {
            Some(_) if self.can_apply => {
                self.send_edit(
                    path,
                    BufferEdit {
                        start: 0,
                        end: 0,
                        new_text: text.to_string(),
                    },
                    false,
                    TEXT_LABEL,
                )
                .await
            }
            _ => {
                let old = tokio::fs::read_to_string(path).await.unwrap_or_default();
                crate::tools::fs::write_to_disk(path, &format!("{text}{old}")).await
            }
        }
    }

    fn send_edit(
        &self,
        path: &Path,
        edit: BufferEdit,
        versioned: bool,
        label: &'static str,
    ) -> BoxFuture<'static, Result<(), String>> {
        let doc = self.docs.get(path);
        let prepared = doc
            .ok_or_else(|| format!("{} is not open in the editor", path.display()))
            .and_then(|doc| {
                if edit.start > edit.end || edit.end > doc.text.len() {
                    return Err("the edit does not fit the buffer".to_string());
                }
                let we = self.workspace_edit(&doc, &edit, versioned)?;
                Ok((doc, we))
            });
        let client = self.client.clone();
        let docs = self.docs.clone();
        let path = path.to_path_buf();
        Box::pin(async move {
            let (doc, we) = prepared?;
            let params = ApplyWorkspaceEditParams {
                label: Some(label.into()),
                edit: we,
            };
            let sent = tokio::time::timeout(
                APPLY_TIMEOUT,
                client.send_request::<tower_lsp_server::ls_types::request::ApplyWorkspaceEdit>(
                    params,
                ),
            )
            .await;
            match sent {
                Err(_) => Err("the editor did not answer workspace/applyEdit in time".into()),
                Ok(Err(e)) => Err(format!(
                    "the editor answered workspace/applyEdit with an error: {}",
                    e.message
                )),
                Ok(Ok(r)) if r.applied => {
                    let new_text = format!(
                        "{}{}{}",
                        &doc.text[..edit.start],
                        edit.new_text,
                        &doc.text[edit.end..]
                    );
                    docs.set_text(&path, doc.version, new_text);
                    Ok(())
                }
                Ok(Ok(r)) => Err(format!(
                    "the editor refused it{}",
                    r.failure_reason
                        .map(|f| format!(": {f}"))
                        .unwrap_or_default()
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_go_up() {
        let d = Documents::default();
        let p = PathBuf::from("/w/a.rs");
        d.open(p.clone(), "file:///w/a.rs".into(), 1, "one".into());
        d.change(&p, "file:///w/a.rs".into(), 3, "three".into());
        d.change(&p, "file:///w/a.rs".into(), 2, "two".into());
        assert_eq!(d.open_text(&p).as_deref(), Some("three"));
        assert_eq!(d.get(&p).map(|d| d.version), Some(3));
        d.close(&p);
        assert_eq!(d.open_text(&p), None);
    }

    #[test]
    fn positions_in_each_encoding() {
        let t = "a😀b\nxé";
        let at_b = t.find('b').expect("b");
        assert_eq!(
            position(t, at_b, Encoding::Utf8),
            Position {
                line: 0,
                character: 5
            }
        );
        assert_eq!(
            position(t, at_b, Encoding::Utf16),
            Position {
                line: 0,
                character: 3
            }
        );
        assert_eq!(
            position(t, at_b, Encoding::Utf32),
            Position {
                line: 0,
                character: 2
            }
        );
        assert_eq!(
            position(t, t.len(), Encoding::Utf16),
            Position {
                line: 1,
                character: 2
            }
        );
    }
}
