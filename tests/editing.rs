//! Edits that never lose text: the editor owns its open buffers. An agent's
//! edit to an open file reaches the editor's buffer only (visible, undoable,
//! saved by the editor like the person's own edit), never the disk behind it;
//! the model is told when commands will not see it. Files not open are
//! written on disk.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Reply};

const ORIGINAL: &str = "line one\nline two\nline three\n";

fn cfg(profile: ClientProfile, root: &Path, model: &ModelServer, data: &Path) -> EditorConfig {
    EditorConfig::new(env!("CARGO_BIN_EXE_tether"), profile, root)
        .init_options(json!({"model": "scripted", "baseUrl": model.base_url(), "dataDir": data}))
}

fn edit_three() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(vec![call(
            "e",
            "edit_file",
            json!({"path": "doc.txt", "old_text": "line three", "new_text": "line 3"}),
        )]),
        Reply::Text("edited".into()),
    ]
}

fn apply_edits(ed: &Editor) -> Vec<Value> {
    ed.server_requests()
        .into_iter()
        .filter(|r| r.method == "workspace/applyEdit")
        .map(|r| r.params)
        .collect()
}

async fn run(ed: &Editor, model: &ModelServer) -> String {
    let r = ed
        .request("tether/prompt", json!({"text": "edit"}))
        .await
        .expect("prompt");
    support::turn_ended(ed, &r).await;
    tool_results(&model.requests()[1].body)[0].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_file_is_edited_on_disk_only() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let model = ModelServer::start(edit_three()).await;
    let (ed, _) = Editor::start(cfg(ClientProfile::VsCode, ws.path(), &model, data.path())).await;
    let out = run(&ed, &model).await;
    assert!(out.starts_with("Edited"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "line one\nline two\nline 3\n"
    );
    assert!(
        apply_edits(&ed).is_empty(),
        "nothing is open: no buffer edit"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_file_is_edited_in_the_buffer_never_behind_it_on_disk() {
    for profile in [
        ClientProfile::VsCode,
        ClientProfile::HelixMaster,
        ClientProfile::HelixRelease,
        ClientProfile::Neovim,
    ] {
        let ws = support::workspace();
        let data = tempfile::tempdir().expect("data");
        let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
        let uri = support::uri(&path);
        let model = ModelServer::start(edit_three()).await;
        let (ed, _) = Editor::start(cfg(profile, ws.path(), &model, data.path())).await;
        ed.open(&uri, "plaintext", ORIGINAL).await;
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let out = run(&ed, &model).await;
        assert!(out.starts_with("Edited"), "{profile:?}: {out}");
        let want = "line one\nline two\nline 3\n";
        assert_eq!(
            ed.document(&uri).as_deref(),
            Some(want),
            "{profile:?}: the buffer got it"
        );
        // The editor owns the file while it is open: its save, undo and
        // timestamp checks see nothing written behind the buffer.
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            ORIGINAL,
            "{profile:?}"
        );
        assert_eq!(
            std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            mtime,
            "{profile:?}: the file was not touched"
        );
        // The model knows commands see the disk until the person saves.
        assert!(
            out.contains("commands you run see the file on disk without it"),
            "{profile:?}: {out}"
        );
        let edits = apply_edits(&ed);
        assert_eq!(edits.len(), 1, "{profile:?}");
        // One small edit, not a whole-file replacement: the person can undo it.
        let text = edits[0].to_string();
        assert!(text.contains("\"newText\":\"line 3\""), "{text}");
        // Labelled as an agent edit: a Tether plugin saves it.
        assert_eq!(edits[0]["label"], "Tether: agent edit", "{profile:?}");
        assert!(ed.problems().is_empty(), "{:?}", ed.problems());
        ed.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsaved_changes_elsewhere_stay_unsaved_beside_the_edit() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let uri = support::uri(&path);
    let model = ModelServer::start(edit_three()).await;
    let (ed, _) = Editor::start(cfg(ClientProfile::VsCode, ws.path(), &model, data.path())).await;
    ed.open(&uri, "plaintext", ORIGINAL).await;
    // The person types a line at the top and does not save.
    let typed = format!("// my unsaved note\n{ORIGINAL}");
    ed.change(&uri, &typed).await;
    let out = run(&ed, &model).await;
    assert!(
        out.contains("with unsaved changes (the person's") && out.contains("was not saved"),
        "{out}"
    );
    assert_eq!(
        ed.document(&uri).as_deref(),
        Some("// my unsaved note\nline one\nline two\nline 3\n"),
        "the buffer has both"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        ORIGINAL,
        "the disk has neither"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_the_persons_unsaved_text_goes_into_the_buffer_only() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let uri = support::uri(&path);
    // The agent read the buffer, so it may edit the very line the person is
    // changing: the edit goes where the person sees and can undo it.
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "e",
            "edit_file",
            json!({"path": "doc.txt", "old_text": "line three (person)", "new_text": "line 3"}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ClientProfile::Neovim, ws.path(), &model, data.path())).await;
    ed.open(&uri, "plaintext", ORIGINAL).await;
    ed.change(&uri, "line one\nline two\nline three (person)\n")
        .await;
    let out = run(&ed, &model).await;
    assert!(out.starts_with("Edited"), "{out}");
    assert_eq!(
        ed.document(&uri).as_deref(),
        Some("line one\nline two\nline 3\n")
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), ORIGINAL);
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_apply_edit_unsaved_changes_in_the_edited_region_are_a_conflict() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let uri = support::uri(&path);
    // An editor that cannot take edits: the disk gets the edit, so an edit
    // over the person's unsaved text would be lost on their next save.
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "e",
            "edit_file",
            json!({"path": "doc.txt", "old_text": "line three (person)", "new_text": "line 3"}),
        )]),
        Reply::ToolCalls(vec![call(
            "w",
            "write_file",
            json!({"path": "doc.txt", "content": "replaced\n"}),
        )]),
        Reply::ToolCalls(vec![call(
            "e2",
            "edit_file",
            json!({"path": "doc.txt", "old_text": "line one", "new_text": "line 1"}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ClientProfile::Bare, ws.path(), &model, data.path())).await;
    ed.open(&uri, "plaintext", ORIGINAL).await;
    let typed = "line one\nline two\nline three (person)\n";
    ed.change(&uri, typed).await;
    let r = ed
        .request("tether/prompt", json!({"text": "edit"}))
        .await
        .expect("prompt");
    support::turn_ended(&ed, &r).await;
    let reqs = model.requests();
    let edit_out = &tool_results(&reqs[1].body)[0].1;
    assert!(
        edit_out.contains("Conflict") && edit_out.contains("unsaved changes"),
        "{edit_out}"
    );
    let write_out = &tool_results(&reqs[2].body)[1].1;
    assert!(write_out.contains("Conflict"), "{write_out}");
    assert!(apply_edits(&ed).is_empty(), "no buffer edit was sent");
    // An edit away from the person's text reaches the disk alone.
    let away = &tool_results(&reqs[3].body)[2].1;
    assert!(away.contains("cannot receive edits"), "{away}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "line 1\nline two\nline three\n",
        "the disk has the agent's edit, not the person's unsaved text"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_that_refuses_the_edit_changes_nothing() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let uri = support::uri(&path);
    let model = ModelServer::start(edit_three()).await;
    let (ed, _) = Editor::start(cfg(ClientProfile::VsCode, ws.path(), &model, data.path())).await;
    ed.open(&uri, "plaintext", ORIGINAL).await;
    ed.set_apply_edit_answer(false);
    let out = run(&ed, &model).await;
    assert!(out.contains("did not apply"), "{out}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), ORIGINAL);
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_searches_see_unsaved_text() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let path = support::write_file(ws.path(), "doc.txt", ORIGINAL);
    let uri = support::uri(&path);
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("r", "read_file", json!({"path": "doc.txt"})),
            call("s", "search", json!({"pattern": "unsaved-word"})),
        ]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ClientProfile::Neovim, ws.path(), &model, data.path())).await;
    ed.open(&uri, "plaintext", ORIGINAL).await;
    ed.change(&uri, "line one\nunsaved-word here\n").await;
    ed.request("tether/prompt", json!({"text": "look"}))
        .await
        .expect("prompt");
    let results = tool_results(&model.requests()[1].body);
    assert!(
        results[0].1.contains("unsaved-word here"),
        "{}",
        results[0].1
    );
    assert!(
        results[1].1.contains("doc.txt:2: unsaved-word here"),
        "{}",
        results[1].1
    );
    ed.shutdown().await;
}
