//! File tools: read, list, search, write, edit. Reads see the editor's unsaved
//! text for open documents; writes go through the gate's edit check.

use std::path::Path;

use ignore::WalkBuilder;

use super::{BufferEdit, ToolCtx, ToolResult};
use crate::gate::Decision;

const DEFAULT_LIMIT: u64 = 2000;
const MAX_LINE_CHARS: usize = 2000;
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
const MAX_LIST: usize = 1000;
const MAX_MATCHES: usize = 200;
const MAX_SEARCH_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The text of a file as the agent should see it: the editor's buffer if open.
pub async fn current_text(ctx: &ToolCtx, path: &Path) -> Result<String, String> {
    if let Some(t) = ctx.buffers.open_text(path) {
        return Ok(t);
    }
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", ctx.display(path)))?;
    if meta.is_dir() {
        return Err(format!(
            "{} is a directory; use list_dir",
            ctx.display(path)
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} is {} bytes, too large to read whole; use search",
            ctx.display(path),
            meta.len()
        ));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", ctx.display(path)))?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err(format!("{} looks binary; not shown", ctx.display(path)));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub async fn read_file(
    ctx: &ToolCtx,
    path: &str,
    offset: Option<u64>,
    limit: Option<u64>,
) -> ToolResult {
    let p = ctx.resolve(path);
    let text = match current_text(ctx, &p).await {
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
        let shown: String = if line.chars().count() > MAX_LINE_CHARS {
            let mut s: String = line.chars().take(MAX_LINE_CHARS).collect();
            s.push_str(" […line cut]");
            s
        } else {
            line.to_string()
        };
        out.push_str(&format!("{n:>6}\t{shown}\n"));
    }
    if text.is_empty() {
        return ToolResult::ok(format!("{} is empty.", ctx.display(&p)));
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
    let dir = ctx.resolve(path.unwrap_or("."));
    let shown = ctx.display(&dir);
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
    let base = ctx.resolve(path.unwrap_or("."));
    let mut builder = WalkBuilder::new(&base);
    builder
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git");
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
            let text = match buffers.open_text(p) {
                Some(t) => t,
                None => {
                    if entry.metadata().map(|m| m.len()).unwrap_or(0) > MAX_SEARCH_FILE_BYTES {
                        continue;
                    }
                    let Ok(bytes) = std::fs::read(p) else {
                        continue;
                    };
                    if bytes.iter().take(8192).any(|b| *b == 0) {
                        continue;
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            let rel = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if out.len() < MAX_MATCHES {
                        let shown: String = line.chars().take(300).collect();
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
    match result {
        Ok((out, _)) if out.is_empty() => ToolResult::ok("No matches."),
        Ok((out, more)) => {
            let mut s = out.join("\n");
            if more > 0 {
                s.push_str(&format!(
                    "\n[{more} more matches not shown; narrow the search]"
                ));
            }
            ToolResult::ok(s)
        }
        Err(e) => ToolResult::failed(format!("search failed: {e}")),
    }
}

async fn gate_edit(ctx: &ToolCtx, path: &Path) -> Result<(), ToolResult> {
    let cwd = ctx.root.clone();
    match ctx.gate.check_edit(path, ctx.ask_ctx(&cwd)).await {
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

/// Commits a change to `path` so that the editor's buffer (when open) and
/// the disk both get it, without touching text the person typed and has not
/// saved. `edit` is in the coordinates of the text the agent saw (the buffer
/// when open, else the disk); `full_new` is that text with the edit applied.
/// Returns a note for the model, or an error (nothing was changed).
async fn commit(
    ctx: &ToolCtx,
    path: &Path,
    edit: BufferEdit,
    full_new: &str,
) -> Result<String, String> {
    let Some(buffer) = ctx.buffers.open_text(path) else {
        write_to_disk(path, full_new).await?;
        return Ok(String::new());
    };
    let disk = tokio::fs::read_to_string(path).await.ok();
    let disk_new = match disk.as_deref() {
        None => full_new.to_string(),
        Some(d) => match unsaved_region(d, &buffer) {
            None => full_new.to_string(),
            Some((rs, rbe, rde)) => {
                if edit.start <= rbe && rs <= edit.end {
                    return Err(format!(
                        "Conflict: {} has unsaved changes in the editor at lines {}–{}, where this edit applies. \
                         Nothing was changed. Ask the person to save or undo their changes there, then read the file again.",
                        ctx.display(path),
                        line_of(&buffer, rs),
                        line_of(&buffer, rbe)
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
    let note = if ctx.buffers.can_apply() {
        ctx.buffers.apply_edit(path, edit).await.map_err(|e| {
            format!(
                "The editor did not apply the edit to {} ({e}); nothing was changed.",
                ctx.display(path)
            )
        })?;
        if disk.as_deref().is_some_and(|d| d != buffer) {
            " The person's unsaved changes elsewhere in the file were kept unsaved."
        } else {
            ""
        }
    } else {
        " (The editor cannot receive edits; it will see the file change on disk.)"
    };
    write_to_disk(path, &disk_new).await?;
    Ok(note.to_string())
}

pub async fn write_file(ctx: &ToolCtx, path: &str, content: &str) -> ToolResult {
    let p = ctx.resolve(path);
    if let Err(r) = gate_edit(ctx, &p).await {
        return r;
    }
    // The model saw this file's secrets as the redaction mark: writing the mark
    // back would destroy them.
    if content.contains(super::redact::MARK) {
        if let Ok(current) = current_text(ctx, &p).await {
            if ctx.redactor.finds_secret(&current) {
                return ToolResult::failed(format!(
                    "{} holds secret values that were shown to you as {}; writing this \
                     content would replace them with that placeholder. Nothing was \
                     changed. Change the file with edit_file, away from those values.",
                    ctx.display(&p),
                    super::redact::MARK
                ));
            }
        }
    }
    let open_len = ctx.buffers.open_text(&p).map(|t| t.len());
    let existed = p.exists() || open_len.is_some();
    let old_len = open_len.unwrap_or(0);
    let edit = BufferEdit {
        start: 0,
        end: old_len,
        new_text: content.to_string(),
    };
    match commit(ctx, &p, edit, content).await {
        Ok(note) => ToolResult::ok(format!(
            "{} {} ({} lines).{note}",
            if existed { "Overwrote" } else { "Created" },
            ctx.display(&p),
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
    let p = ctx.resolve(path);
    if old_text.is_empty() {
        return ToolResult::failed("old_text is empty; use write_file to create a file");
    }
    let text = match current_text(ctx, &p).await {
        Ok(t) => t,
        Err(e) => return ToolResult::failed(e),
    };
    let positions: Vec<usize> = text.match_indices(old_text).map(|(i, _)| i).collect();
    let count = positions.len();
    if count == 0 {
        return ToolResult::failed(format!(
            "old_text was not found in {}; read the file again and copy the text exactly",
            ctx.display(&p)
        ));
    }
    if count > 1 && !replace_all {
        return ToolResult::failed(format!(
            "old_text matches {count} times in {}; include more context to make it unique, or set replace_all",
            ctx.display(&p)
        ));
    }
    if let Err(r) = gate_edit(ctx, &p).await {
        return r;
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
    match commit(ctx, &p, edit, &updated).await {
        Ok(note) => ToolResult::ok(format!(
            "Edited {} ({} replacement{}).{note}",
            ctx.display(&p),
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
