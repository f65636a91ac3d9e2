//! File tools: read, list, search, write, edit. Reads see the editor's unsaved
//! text for open documents. Every path is first resolved the way the kernel
//! will resolve it ([`realpath`]); the gate judges the real file (reads with
//! `check_read`, writes with `check_edit_at`), and the tool then opens exactly
//! what was judged, with links refused. Writes are atomic.

use crate::text::Max;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;

use super::realpath::{self, Target};
use super::{BufferEdit, ToolCtx, ToolResult};
use crate::gate::classify::{classify_read, ReadPlace};
use crate::gate::{Decision, FileTouch};

const DEFAULT_LIMIT: u64 = 2000;
const MAX_LINE_CHARS: usize = 2000;
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
const MAX_LIST: usize = 1000;
const MAX_MATCHES: usize = 200;
const MAX_SEARCH_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Resolves a model-given path to the file the kernel would reach.
pub async fn target(ctx: &ToolCtx, path: &str) -> Result<Target, ToolResult> {
    let named = ctx.joined(path);
    let shown = ctx.display(&super::normalize(&named));
    match tokio::task::spawn_blocking(move || realpath::resolve(&named)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(ToolResult::failed(format!("cannot resolve {shown}: {e}"))),
        Err(e) => Err(ToolResult::failed(format!("cannot resolve {shown}: {e}"))),
    }
}

fn touch(t: &Target) -> FileTouch<'_> {
    FileTouch {
        named: &t.named,
        real: &t.real,
        linked: t.linked,
        hard_links: t.hard_links(),
        is_dir: t.file.is_some_and(|f| f.is_dir),
    }
}

/// The name to show for `t`: as named, relative to the root when inside.
fn shown(ctx: &ToolCtx, t: &Target) -> String {
    ctx.display(&super::normalize(&t.named))
}

fn gate_result(ctx: &ToolCtx, d: Decision) -> Result<(), ToolResult> {
    match d {
        Decision::Allow => Ok(()),
        Decision::Deny(msg) => {
            if ctx.cancel.is_cancelled() {
                Err(ToolResult::cancelled())
            } else {
                Err(ToolResult::denied(msg))
            }
        }
    }
}

async fn gate_read(ctx: &ToolCtx, t: &Target) -> Result<(), ToolResult> {
    let cwd = ctx.root.clone();
    let d = ctx.gate.check_read(&touch(t), ctx.ask_ctx(&cwd)).await;
    gate_result(ctx, d)
}

/// The open buffer of `t`, under the name the editor opened it by.
fn buffer_of(ctx: &ToolCtx, t: &Target) -> Option<(PathBuf, String)> {
    let named = super::normalize(&t.named);
    if let Some(text) = ctx.buffers.open_text(&named) {
        return Some((named, text));
    }
    ctx.buffers
        .open_text(&t.real)
        .map(|text| (t.real.clone(), text))
}

/// The text of a file as the agent should see it: the editor's buffer if
/// open, else the real file (opened without following links).
pub async fn current_text(ctx: &ToolCtx, t: &Target) -> Result<String, String> {
    if let Some(text) = read_through(ctx, t).await {
        return text;
    }
    if let Some((_, text)) = buffer_of(ctx, t) {
        return Ok(text);
    }
    let shown = shown(ctx, t);
    if t.file.is_some_and(|f| f.is_dir) {
        return Err(format!("{shown} is a directory; use list_dir"));
    }
    if t.file.is_none() {
        return Err(format!("cannot read {shown}: No such file or directory"));
    }
    let t2 = t.clone();
    let bytes = tokio::task::spawn_blocking(move || realpath::read_checked(&t2, MAX_FILE_BYTES))
        .await
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err(format!("{shown} looks binary; not shown"));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub async fn read_file(
    ctx: &ToolCtx,
    path: &str,
    offset: Option<u64>,
    limit: Option<u64>,
) -> ToolResult {
    let t = match target(ctx, path).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = gate_read(ctx, &t).await {
        return r;
    }
    let text = match current_text(ctx, &t).await {
        Ok(t) => t,
        Err(e) => return ToolResult::failed(e),
    };
    let start = offset.unwrap_or(1).max(1);
    let limit = limit.unwrap_or(DEFAULT_LIMIT).max(1);
    let mut out = String::new();
    let mut total = 0u64;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        total = n;
        if n < start || n >= start.saturating_add(limit) {
            continue;
        }
        let shown = crate::text::truncate(line, Max::Chars(MAX_LINE_CHARS), " […line cut]");
        out.push_str(&format!("{n:>6}\t{shown}\n"));
    }
    if text.is_empty() {
        return ToolResult::ok(format!("{} is empty.", shown(ctx, &t)));
    }
    let end = start.saturating_add(limit) - 1;
    if start > 1 || end < total {
        out.push_str(&format!(
            "[lines {}–{} of {total}]\n",
            start.min(total),
            end.min(total)
        ));
    }
    ToolResult::ok(out)
}

pub async fn list_dir(ctx: &ToolCtx, path: Option<&str>) -> ToolResult {
    let t = match target(ctx, path.unwrap_or(".")).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let shown = shown(ctx, &t);
    match t.file {
        None => return ToolResult::failed(format!("{shown} does not exist")),
        Some(f) if !f.is_dir => return ToolResult::failed(format!("{shown} is not a directory")),
        Some(_) => {}
    }
    if let Err(r) = gate_read(ctx, &t).await {
        return r;
    }
    // The real directory: its entries are listed, links among them are not followed.
    let dir = t.real.clone();
    let root = dir.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        let walker = WalkBuilder::new(&root)
            .max_depth(Some(1))
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        for entry in walker.flatten() {
            if entry.depth() == 0 {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            entries.push(if is_dir { format!("{name}/") } else { name });
        }
        entries.sort();
        entries
    })
    .await;
    match listed {
        Ok(entries) if entries.is_empty() => {
            if dir.is_dir() {
                ToolResult::ok(format!(
                    "{shown} is empty (or everything in it is ignored)."
                ))
            } else {
                ToolResult::failed(format!("{shown} is not a directory"))
            }
        }
        Ok(mut entries) => {
            let n = entries.len();
            entries.truncate(MAX_LIST);
            let mut out = entries.join("\n");
            if n > MAX_LIST {
                out.push_str(&format!("\n[{} more entries not shown]", n - MAX_LIST));
            }
            ToolResult::ok(out)
        }
        Err(e) => ToolResult::failed(format!("listing failed: {e}")),
    }
}

pub async fn search(
    ctx: &ToolCtx,
    pattern: &str,
    path: Option<&str>,
    glob: Option<&str>,
) -> ToolResult {
    let re = match regex::RegexBuilder::new(pattern)
        .size_limit(10 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => return ToolResult::failed(format!("invalid regular expression: {e}")),
    };
    let t = match target(ctx, path.unwrap_or(".")).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.file.is_none() {
        return ToolResult::failed(format!("{} does not exist", shown(ctx, &t)));
    }
    if let Err(r) = gate_read(ctx, &t).await {
        return r;
    }
    // Walk the real base; links met on the way are not followed, and files
    // that hold keys or credentials are not opened (reading them asks).
    let base = t.real.clone();
    let roots: Vec<PathBuf> = ctx.gate.real_roots().to_vec();
    let home = ctx.gate.home().map(Path::to_path_buf);
    let secret = move |p: &Path| classify_read(p, &roots, home.as_deref()) == ReadPlace::Secret;
    let skipped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut builder = WalkBuilder::new(&base);
    {
        let secret = secret.clone();
        let skipped = skipped.clone();
        builder
            .hidden(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(move |e| {
                if e.file_name().eq_ignore_ascii_case(".git") {
                    return false;
                }
                if e.depth() > 0 && secret(e.path()) {
                    skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return false;
                }
                true
            });
    }
    if let Some(g) = glob {
        let mut ob = ignore::overrides::OverrideBuilder::new(&base);
        if let Err(e) = ob.add(g) {
            return ToolResult::failed(format!("invalid glob {g:?}: {e}"));
        }
        match ob.build() {
            Ok(o) => {
                builder.overrides(o);
            }
            Err(e) => return ToolResult::failed(format!("invalid glob {g:?}: {e}")),
        }
    }
    let buffers = ctx.buffers.clone();
    let root = ctx.root.clone();
    let real_root = ctx
        .gate
        .real_roots()
        .first()
        .cloned()
        .unwrap_or(root.clone());
    let cancel = ctx.cancel.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut more = 0usize;
        for entry in builder.build().flatten() {
            if cancel.is_cancelled() {
                break;
            }
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let p = entry.path();
            // The editor knows the file by the root it was given, which may
            // itself be reached through a link.
            let open = p
                .strip_prefix(&real_root)
                .ok()
                .and_then(|rel| buffers.open_text(&root.join(rel)))
                .or_else(|| buffers.open_text(p));
            let text = match open {
                Some(t) => t,
                None => {
                    if entry.metadata().map(|m| m.len()).unwrap_or(0) > MAX_SEARCH_FILE_BYTES {
                        continue;
                    }
                    let file = Target {
                        named: p.to_path_buf(),
                        real: p.to_path_buf(),
                        linked: false,
                        final_link: false,
                        file: None,
                    };
                    let Ok(bytes) = realpath::read_checked(&file, MAX_SEARCH_FILE_BYTES) else {
                        continue;
                    };
                    if bytes.iter().take(8192).any(|b| *b == 0) {
                        continue;
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            let rel = p
                .strip_prefix(&real_root)
                .or_else(|_| p.strip_prefix(&root))
                .unwrap_or(p)
                .display()
                .to_string();
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if out.len() < MAX_MATCHES {
                        let shown = crate::text::prefix(line, Max::Chars(300));
                        out.push(format!("{rel}:{}: {}", i + 1, shown.trim_end()));
                    } else {
                        more += 1;
                    }
                }
            }
        }
        (out, more)
    })
    .await;
    if ctx.cancel.is_cancelled() {
        return ToolResult::cancelled();
    }
    let skipped = skipped.load(std::sync::atomic::Ordering::Relaxed);
    let skipped_note = if skipped > 0 {
        format!(
            "\n[{skipped} file(s) or folder(s) that may hold keys or credentials were not searched; read_file asks the person for them]"
        )
    } else {
        String::new()
    };
    match result {
        Ok((out, _)) if out.is_empty() => ToolResult::ok(format!("No matches.{skipped_note}")),
        Ok((out, more)) => {
            let mut s = out.join("\n");
            if more > 0 {
                s.push_str(&format!(
                    "\n[{more} more matches not shown; narrow the search]"
                ));
            }
            s.push_str(&skipped_note);
            ToolResult::ok(s)
        }
        Err(e) => ToolResult::failed(format!("search failed: {e}")),
    }
}

async fn gate_edit(ctx: &ToolCtx, t: &Target) -> Result<(), ToolResult> {
    let cwd = ctx.root.clone();
    let d = ctx.gate.check_edit_at(&touch(t), ctx.ask_ctx(&cwd)).await;
    gate_result(ctx, d)
}

/// Writes `text` to the file `t` was judged to be, atomically (see
/// [`realpath::write_atomic`]).
async fn write_target(ctx: &ToolCtx, t: &Target, text: &str) -> Result<(), String> {
    let shown = shown(ctx, t);
    let t2 = t.clone();
    let bytes = text.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || realpath::write_atomic(&t2, &bytes))
        .await
        .map_err(|e| format!("cannot write {shown}: {e}"))?
        .map_err(|e| format!("cannot write {shown}: {e}"))
}

/// Writes `text` to disk, creating parents.
pub async fn write_to_disk(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    tokio::fs::write(path, text)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The part of `buffer` that differs from `disk`: `(start, buffer_end,
/// disk_end)`, or `None` when they are equal. Found by common prefix and
/// suffix, on char boundaries.
pub fn unsaved_region(disk: &str, buffer: &str) -> Option<(usize, usize, usize)> {
    if disk == buffer {
        return None;
    }
    let (d, b) = (disk.as_bytes(), buffer.as_bytes());
    let mut p = d.iter().zip(b).take_while(|(x, y)| x == y).count();
    while !buffer.is_char_boundary(p) || !disk.is_char_boundary(p) {
        p -= 1;
    }
    let max_s = d.len().min(b.len()) - p;
    let mut s = d
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_s)
        .take_while(|(x, y)| x == y)
        .count();
    while !buffer.is_char_boundary(b.len() - s) || !disk.is_char_boundary(d.len() - s) {
        s -= 1;
    }
    Some((p, b.len() - s, d.len() - s))
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Reads the real file `t` as text, `None` when it cannot be read.
async fn disk_text(t: &Target) -> Option<String> {
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || realpath::read_checked(&t2, MAX_FILE_BYTES))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The path a client is given for `t` (ACP `fs/*`): the real path judged,
/// refused when a link appeared on it since (the client opens by name, so
/// this narrows the window in which a swapped-in link could redirect it).
async fn still_real(ctx: &ToolCtx, t: &Target) -> Result<PathBuf, String> {
    let real = t.real.clone();
    let again = tokio::task::spawn_blocking(move || realpath::resolve(&real))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match again {
        Ok(now) if now.real == t.real && !now.linked => Ok(t.real.clone()),
        Ok(_) => Err(format!(
            "{} changed while it was being judged (a link appeared); nothing was done",
            shown(ctx, t)
        )),
        Err(e) => Err(format!("cannot resolve {}: {e}", shown(ctx, t))),
    }
}

/// The text of `t` read by the client, when the frontend reads through it.
async fn read_through(ctx: &ToolCtx, t: &Target) -> Option<Result<String, String>> {
    if !ctx.buffers.reads_through() {
        return None;
    }
    let shown = shown(ctx, t);
    if t.file.is_some_and(|f| f.is_dir) {
        return Some(Err(format!("{shown} is a directory; use list_dir")));
    }
    if t.file.is_none() {
        return Some(Err(format!(
            "cannot read {shown}: No such file or directory"
        )));
    }
    if t.file.is_some_and(|f| f.len > MAX_FILE_BYTES) {
        return Some(Err(format!("{shown} is too large to read")));
    }
    let path = match still_real(ctx, t).await {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let read = ctx.buffers.read_through(&ctx.turn_session_id, &path);
    Some(match read.await {
        Ok(text) if text.len() as u64 > MAX_FILE_BYTES => {
            Err(format!("{shown} is too large to read"))
        }
        Ok(text) if text.contains('\0') => Err(format!("{shown} looks binary; not shown")),
        Ok(text) => Ok(text),
        Err(e) => Err(format!("cannot read {shown}: {e}")),
    })
}

/// Commits a change to `path` (docs/PROTOCOL.md, "Agent edits and open
/// buffers"). The editor owns its open buffers: a file open in an editor
/// that takes edits gets the edit only through `workspace/applyEdit`, never
/// on disk behind the buffer, so undo, save, quit and reload mean what the
/// person thinks. A Tether plugin saves a buffer that was clean before the
/// edit; otherwise the edit stays unsaved and the model is told that commands
/// see the disk. A file that is not open is written on disk. `edit` is in the
/// coordinates of the text the agent saw (the buffer when open, else the
/// disk); `full_new` is that text with the edit applied.
/// Returns a note for the model, or an error (nothing was changed).
async fn commit(
    ctx: &ToolCtx,
    t: &Target,
    edit: BufferEdit,
    full_new: &str,
) -> Result<String, String> {
    if ctx.buffers.writes_through() {
        // The client holds the buffer and the disk: it gets the whole new
        // text (computed from what it gave us to read).
        let path = still_real(ctx, t).await?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        ctx.buffers
            .write_through(&ctx.turn_session_id, &path, full_new)
            .await
            .map_err(|e| {
                format!(
                    "The editor did not write {} ({e}); nothing was changed.",
                    shown(ctx, t)
                )
            })?;
        return Ok(String::new());
    }
    let Some((path, buffer)) = buffer_of(ctx, t) else {
        write_target(ctx, t, full_new).await?;
        return Ok(String::new());
    };
    let path = path.as_path();
    let disk = disk_text(t).await;
    if !ctx.buffers.can_apply() {
        return commit_behind_buffer(ctx, t, path, &buffer, disk.as_deref(), edit).await;
    }
    let had_unsaved = disk.as_deref() != Some(buffer.as_str());
    ctx.buffers.apply_edit(path, edit).await.map_err(|e| {
        format!(
            "The editor did not apply the edit to {} ({e}); nothing was changed.",
            ctx.display(path)
        )
    })?;
    // A plugin that saves agent edits has saved before answering: the disk
    // then holds what the buffer holds.
    if disk_text(t).await.as_deref() == Some(full_new) {
        return Ok(if had_unsaved {
            String::new()
        } else {
            " The editor saved it.".to_string()
        });
    }
    let shown = ctx.display(path);
    Ok(if had_unsaved {
        format!(
            " {shown} is open in the editor with unsaved changes (the person's, or earlier \
             edits of yours), so the edit went into the editor's buffer and was not saved: \
             read_file and search see it, but commands you run see the file on disk without \
             it (and without those changes). Ask the person to save {shown} if a command \
             needs the edit."
        )
    } else if ctx.buffers.saves_agent_edits() {
        format!(
            " {shown} is open in the editor and was not saved after the edit: read_file and \
             search see it, but commands you run see the file on disk without it. Ask the \
             person to save {shown} if a command needs the edit."
        )
    } else {
        format!(
            " {shown} is open in the editor, which keeps the edit unsaved in its buffer (the \
             person can see and undo it): read_file and search see it, but commands you run \
             see the file on disk without it. Ask the person to save {shown} if a command \
             needs the edit."
        )
    })
}

/// For an editor that has the file open but cannot take edits: the disk
/// gets the agent's edit and the editor reloads it, never the person's
/// unsaved text; an edit that overlaps that text is a conflict.
async fn commit_behind_buffer(
    ctx: &ToolCtx,
    t: &Target,
    path: &Path,
    buffer: &str,
    disk: Option<&str>,
    edit: BufferEdit,
) -> Result<String, String> {
    let full_new = format!(
        "{}{}{}",
        &buffer[..edit.start],
        edit.new_text,
        &buffer[edit.end..]
    );
    let disk_new = match disk {
        None => full_new,
        Some(d) => match unsaved_region(d, buffer) {
            None => full_new,
            Some((rs, rbe, rde)) => {
                if edit.start <= rbe && rs <= edit.end {
                    return Err(format!(
                        "Conflict: {} has unsaved changes in the editor at lines {}–{}, where this edit applies. \
                         Nothing was changed. Ask the person to save or undo their changes there, then read the file again.",
                        ctx.display(path),
                        line_of(buffer, rs),
                        line_of(buffer, rbe)
                    ));
                }
                // The edit is wholly before or after the person's changes:
                // apply it to the disk text at the matching place.
                let (ds, de) = if edit.end <= rs {
                    (edit.start, edit.end)
                } else {
                    (edit.start - rbe + rde, edit.end - rbe + rde)
                };
                format!("{}{}{}", &d[..ds], edit.new_text, &d[de..])
            }
        },
    };
    write_target(ctx, t, &disk_new).await?;
    Ok(" (The editor cannot receive edits; it will see the file change on disk.)".to_string())
}

pub async fn write_file(ctx: &ToolCtx, path: &str, content: &str) -> ToolResult {
    let t = match target(ctx, path).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.file.is_some_and(|f| f.is_dir) {
        return ToolResult::failed(format!("{} is a directory", shown(ctx, &t)));
    }
    if let Err(r) = gate_edit(ctx, &t).await {
        return r;
    }
    // The model saw this file's secrets as the redaction mark: writing the mark
    // back would destroy them.
    if content.contains(super::redact::MARK) {
        if let Ok(current) = current_text(ctx, &t).await {
            if ctx.redactor.finds_secret(&current) {
                return ToolResult::failed(format!(
                    "{} holds secret values that were shown to you as {}; writing this \
                     content would replace them with that placeholder. Nothing was \
                     changed. Change the file with edit_file, away from those values.",
                    shown(ctx, &t),
                    super::redact::MARK
                ));
            }
        }
    }
    let open_len = buffer_of(ctx, &t).map(|(_, text)| text.len());
    let existed = t.file.is_some() || open_len.is_some();
    let old_len = open_len.unwrap_or(0);
    let edit = BufferEdit {
        start: 0,
        end: old_len,
        new_text: content.to_string(),
    };
    match commit(ctx, &t, edit, content).await {
        Ok(note) => ToolResult::ok(format!(
            "{} {} ({} lines).{note}",
            if existed { "Overwrote" } else { "Created" },
            shown(ctx, &t),
            content.lines().count()
        )),
        Err(e) => ToolResult::failed(e),
    }
}

pub async fn edit_file(
    ctx: &ToolCtx,
    path: &str,
    old_text: &str,
    new_text: &str,
    replace_all: bool,
) -> ToolResult {
    if old_text.is_empty() {
        return ToolResult::failed("old_text is empty; use write_file to create a file");
    }
    let t = match target(ctx, path).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    // Asked before the file is read: whether old_text matches must not tell
    // the model anything about a file it may not touch.
    if let Err(r) = gate_edit(ctx, &t).await {
        return r;
    }
    let text = match current_text(ctx, &t).await {
        Ok(t) => t,
        Err(e) => return ToolResult::failed(e),
    };
    let positions: Vec<usize> = text.match_indices(old_text).map(|(i, _)| i).collect();
    let count = positions.len();
    if count == 0 {
        return ToolResult::failed(format!(
            "old_text was not found in {}; read the file again and copy the text exactly",
            shown(ctx, &t)
        ));
    }
    if count > 1 && !replace_all {
        return ToolResult::failed(format!(
            "old_text matches {count} times in {}; include more context to make it unique, or set replace_all",
            shown(ctx, &t)
        ));
    }
    // One edit spanning every match: the editor gets a single undo step.
    let start = positions[0];
    let end = positions[count - 1] + old_text.len();
    let span_new = text[start..end].replace(old_text, new_text);
    let updated = format!("{}{}{}", &text[..start], span_new, &text[end..]);
    let edit = BufferEdit {
        start,
        end,
        new_text: span_new,
    };
    match commit(ctx, &t, edit, &updated).await {
        Ok(note) => ToolResult::ok(format!(
            "Edited {} ({} replacement{}).{note}",
            shown(ctx, &t),
            count,
            if count == 1 { "" } else { "s" }
        )),
        Err(e) => ToolResult::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsaved_region_finds_the_changed_span() {
        assert_eq!(unsaved_region("abc", "abc"), None);
        // inserted "X" after "a"
        assert_eq!(unsaved_region("abc", "aXbc"), Some((1, 2, 1)));
        // deleted "b"
        assert_eq!(unsaved_region("abc", "ac"), Some((1, 1, 2)));
        // multibyte: é → è share a lead byte
        assert_eq!(unsaved_region("café!", "cafè!"), Some((3, 5, 5)));
    }
}
