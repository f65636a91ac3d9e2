//! Reads: session lists, ranked full-text search, messages, exports. Each
//! function takes a reader connection (never the writer's) and is run off
//! the async threads by [`super::Store::read`].

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::{rfc3339, AllowRule, RuleKind, StoreError, StoredMessage};
use crate::protocol::{ActionKind, Role, SessionInfo};

/// At most this many matching messages, the newest, are ranked per search:
/// a word found in most of a million messages would otherwise cost a bm25
/// score for each (about a second); below this many matches the ranking is
/// exact.
const SEARCH_CANDIDATES: i64 = 20_000;

/// What a session with no title yet (no prompt so far) is listed as.
const UNTITLED: &str = "new session";

/// Everything stored about a session itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub title: String,
    pub workspace: String,
    pub model: String,
    pub created_at: String,
    pub updated_at: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub status: String,
    pub message_count: u64,
}

/// A message as exported: its place in the session and everything stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportMessage {
    pub seq: i64,
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub created_at: String,
}

/// One tool run (the output is an excerpt, already redacted).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRunRecord {
    pub tool_call_id: String,
    pub tool: String,
    pub input: String,
    pub status: String,
    pub output_excerpt: String,
    pub duration_ms: i64,
    pub created_at: String,
}

/// One approval decision; `agent` is who asked (a subagent's label, or none).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub approval_id: String,
    pub request: String,
    pub decision: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub created_at: String,
}

/// A whole session, as `tether sessions export` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExport {
    pub session: SessionRecord,
    pub messages: Vec<ExportMessage>,
    pub tool_runs: Vec<ToolRunRecord>,
    pub approvals: Vec<ApprovalRecord>,
    /// Ids of the subagent sessions started from this one.
    pub children: Vec<String>,
}

fn display_title(t: String) -> String {
    if t.is_empty() {
        UNTITLED.to_string()
    } else {
        t
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Which text of a message to load.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text {
    /// What the model saw (a prompt with its editor context).
    Model,
    /// What the person typed.
    Person,
}

pub(crate) fn load_messages(
    c: &Connection,
    session_id: &str,
    text: Text,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut st = c.prepare_cached(match text {
        Text::Model => {
            "SELECT role, content, tool_calls, tool_call_id, created_ms FROM messages
             WHERE session_id = ?1 ORDER BY seq"
        }
        Text::Person => {
            "SELECT role, COALESCE(display, content), tool_calls, tool_call_id, created_ms
             FROM messages WHERE session_id = ?1 ORDER BY seq"
        }
    })?;
    let rows = st.query_map([session_id], |r| {
        let tool_calls: Option<String> = r.get(2)?;
        let role: String = r.get(0)?;
        let role = Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("a message has the role {role:?}, which this Tether does not know").into(),
            )
        })?;
        Ok(StoredMessage {
            role,
            content: r.get(1)?,
            tool_calls: tool_calls.and_then(|s| serde_json::from_str(&s).ok()),
            tool_call_id: r.get(3)?,
            created_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn session_exists(c: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(c.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The session and its subagents' sessions, however deep (empty if unknown).
pub(crate) fn session_tree(c: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached(
        "WITH RECURSIVE tree(id) AS (
           SELECT id FROM sessions WHERE id = ?1
           UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id
         ) SELECT id FROM tree",
    )?;
    let rows = st.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn session(c: &Connection, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT s.id, s.parent_id, s.title, s.workspace, s.model, s.created_ms, s.updated_ms,
                    s.prompt_tokens, s.completion_tokens, s.status,
                    (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
             FROM sessions s WHERE s.id = ?1",
    )?
    .query_row([id], |r| {
        Ok(SessionRecord {
            id: r.get(0)?,
            parent_id: r.get(1)?,
            title: display_title(r.get(2)?),
            workspace: r.get(3)?,
            model: r.get(4)?,
            created_at: rfc3339(r.get(5)?),
            updated_at: rfc3339(r.get(6)?),
            prompt_tokens: r.get(7)?,
            completion_tokens: r.get(8)?,
            status: r.get(9)?,
            message_count: count(r.get(10)?),
        })
    })
    .optional()?)
}

pub(crate) fn export(c: &Connection, id: &str) -> Result<SessionExport, StoreError> {
    let session = session(c, id)?.ok_or_else(|| StoreError::NoSession(id.to_string()))?;
    let messages = c
        .prepare_cached(
            "SELECT seq, role, content, tool_calls, tool_call_id, created_ms FROM messages
             WHERE session_id = ?1 ORDER BY seq",
        )?
        .query_map([id], |r| {
            let tool_calls: Option<String> = r.get(3)?;
            Ok(ExportMessage {
                seq: r.get(0)?,
                role: r.get(1)?,
                content: r.get(2)?,
                tool_calls: tool_calls
                    .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
                tool_call_id: r.get(4)?,
                created_at: rfc3339(r.get(5)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let tool_runs = c
        .prepare_cached(
            "SELECT tool_call_id, tool, input, status, output_excerpt, duration_ms, created_ms
             FROM tool_runs WHERE session_id = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(ToolRunRecord {
                tool_call_id: r.get(0)?,
                tool: r.get(1)?,
                input: r.get(2)?,
                status: r.get(3)?,
                output_excerpt: r.get(4)?,
                duration_ms: r.get(5)?,
                created_at: rfc3339(r.get(6)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let approvals = c
        .prepare_cached(
            "SELECT approval_id, request, decision, scope, agent, created_ms
             FROM approvals WHERE session_id = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(ApprovalRecord {
                approval_id: r.get(0)?,
                request: r.get(1)?,
                decision: r.get(2)?,
                scope: r.get(3)?,
                agent: r.get(4)?,
                created_at: rfc3339(r.get(5)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let children = c
        .prepare_cached("SELECT id FROM sessions WHERE parent_id = ?1 ORDER BY created_ms, rowid")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SessionExport {
        session,
        messages,
        tool_runs,
        approvals,
        children,
    })
}

/// The stored rules. A row whose action or kind this Tether does not know
/// (written by hand, or by a newer Tether) allows nothing: it is left out
/// with a warning, never read as something it may not mean.
pub(crate) fn rules(c: &Connection) -> Result<Vec<AllowRule>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, action, kind, pattern, created_ms FROM allow_rules ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, action, kind, pattern, created_ms) = row?;
        match (ActionKind::parse(&action), RuleKind::parse(&kind)) {
            (Some(action), Some(kind)) => out.push(AllowRule {
                id,
                action,
                kind,
                pattern,
                created_at: rfc3339(created_ms),
            }),
            _ => tracing::warn!(
                "allow rule {id} ({action} {kind} {pattern:?}) is not one this Tether knows; it allows nothing"
            ),
        }
    }
    Ok(out)
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        id: r.get(0)?,
        title: display_title(r.get(1)?),
        parent_id: r.get(2)?,
        created_at: rfc3339(r.get(3)?),
        updated_at: rfc3339(r.get(4)?),
        message_count: count(r.get(5)?),
        snippet: None,
    })
}

const SESSION_COLUMNS: &str = "s.id, s.title, s.parent_id, s.created_ms, s.updated_ms,
    (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)";

/// Sessions, newest first; with a query, the sessions whose messages match
/// best (bm25 of each session's best message), each with a snippet of it.
pub(crate) fn list_sessions(
    c: &Connection,
    query: Option<&str>,
    limit: u32,
) -> Result<Vec<SessionInfo>, StoreError> {
    let limit = i64::from(limit.clamp(1, 10_000));
    let Some(q) = query.map(fts_query).filter(|q| !q.is_empty()) else {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s
             ORDER BY s.updated_ms DESC, s.rowid DESC LIMIT ?1"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([limit], session_row)?;
        return Ok(rows.collect::<Result<Vec<_>, _>>()?);
    };
    // Score the newest SEARCH_CANDIDATES hits (all of them unless the words
    // are very common), keep each session's best message (SQLite takes the
    // bare column `mid` from the row that has the MIN), and build snippets
    // only for the sessions shown.
    let sql = format!(
        "WITH hits AS MATERIALIZED (
           SELECT rowid AS mid, bm25(messages_fts) AS score
           FROM messages_fts WHERE messages_fts MATCH ?1
           ORDER BY rowid DESC LIMIT ?3
         ), best AS MATERIALIZED (
           SELECT m.session_id AS sid, MIN(h.score) AS score, h.mid AS mid
           FROM hits h JOIN messages m ON m.id = h.mid
           WHERE EXISTS (SELECT 1 FROM sessions x WHERE x.id = m.session_id)
           GROUP BY m.session_id
           ORDER BY score LIMIT ?2
         )
         SELECT {SESSION_COLUMNS},
                (SELECT snippet(messages_fts, -1, '[', ']', '…', 16)
                 FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid = b.mid)
         FROM best b JOIN sessions s ON s.id = b.sid
         ORDER BY b.score, s.updated_ms DESC"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(params![q, limit, SEARCH_CANDIDATES], |r| {
        let mut info = session_row(r)?;
        info.snippet = r.get(6)?;
        Ok(info)
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Turns free text into a safe FTS5 query: every word must occur (quoted, so
/// FTS syntax in the text is taken literally); a word ending in `*` matches
/// as a prefix (`migr*` finds "migration").
pub fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .filter_map(|w| {
            let stem = w.trim_end_matches('*');
            let quoted = format!("\"{}\"", stem.replace('"', "\"\""));
            if stem.is_empty() {
                None
            } else if stem.len() < w.len() {
                Some(format!("{quoted}*"))
            } else {
                Some(quoted)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_becomes_a_literal_all_words_query() {
        assert_eq!(fts_query("  cargo  test "), "\"cargo\" \"test\"");
        assert_eq!(fts_query("say \"hi\" OR"), "\"say\" \"\"\"hi\"\"\" \"OR\"");
        assert_eq!(fts_query("migr* *"), "\"migr\"*");
        assert_eq!(fts_query("   "), "");
    }
}
