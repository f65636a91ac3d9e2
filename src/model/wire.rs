//! Lenient Chat Completions wire parsing. Providers bend the format: tool-call
//! deltas without `index`, `id`/`name` only in the first chunk, `usage` in
//! the last chunk or nowhere, `reasoning_content`, a missing `finish_reason`
//! or `[DONE]`, or one JSON body despite `stream: true`. Everything here is
//! `Option` and defaults; nothing panics on any input.

use serde::Deserialize;
use serde_json::Value;

use super::StreamEvent;

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    /// Non-streaming bodies carry `message` instead of `delta`.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    /// Usually a string; some servers send an object.
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Token usage of one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A tool call assembled from deltas.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The raw argument text as the model sent it (may be invalid JSON).
    pub arguments: String,
}

/// One finished model response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// Ended without `[DONE]` and without a finish reason.
    pub stream_incomplete: bool,
    /// Ended while tool-call arguments were still incomplete JSON.
    pub cut_off: bool,
}

pub enum ChunkError {
    /// The provider reported an error inside the stream.
    Provider(String),
    /// The chunk is not JSON we can read (skipped).
    Json(String),
}

#[derive(Debug, Default)]
struct Partial {
    index: Option<u64>,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Assembles a streamed response chunk by chunk.
#[derive(Debug, Default)]
pub struct Assembler {
    text: String,
    reasoning: String,
    calls: Vec<Partial>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    pub saw_done: bool,
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Some servers send content parts: [{type:"text", text:"…"}].
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

impl Assembler {
    /// Feeds one SSE `data:` payload; returns what should be shown at once.
    pub fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ChunkError> {
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| ChunkError::Json(e.to_string()))?;
        if let Some(err) = chunk.error {
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(ChunkError::Provider(msg));
        }
        let mut out = Vec::new();
        if let Some(u) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
        }
        for choice in chunk.choices {
            if let Some(fr) = choice.finish_reason.filter(|s| !s.is_empty()) {
                self.finish_reason = Some(fr);
            }
            let Some(delta) = choice.delta.or(choice.message) else {
                continue;
            };
            if let Some(c) = delta.content.as_ref().map(content_text) {
                if !c.is_empty() {
                    self.text.push_str(&c);
                    out.push(StreamEvent::Text(c));
                }
            }
            if let Some(r) = delta.reasoning_content.or(delta.reasoning) {
                if !r.is_empty() {
                    self.reasoning.push_str(&r);
                    out.push(StreamEvent::Reasoning(r));
                }
            }
            for tc in delta.tool_calls.unwrap_or_default() {
                self.push_call(tc);
            }
        }
        Ok(out)
    }

    /// Finds the partial call a delta belongs to: by `index`, else by `id`;
    /// a delta with neither starts a new call when it names a function and
    /// otherwise continues the last call.
    fn push_call(&mut self, tc: ToolCallDelta) {
        let slot = if let Some(ix) = tc.index {
            self.calls.iter().position(|c| c.index == Some(ix))
        } else if let Some(id) = tc.id.as_deref().filter(|s| !s.is_empty()) {
            self.calls.iter().position(|c| c.id.as_deref() == Some(id))
        } else if tc.function.as_ref().and_then(|f| f.name.as_ref()).is_some() {
            None
        } else {
            self.calls.len().checked_sub(1)
        };
        let i = match slot {
            Some(i) => i,
            None => {
                self.calls.push(Partial {
                    index: tc.index,
                    ..Default::default()
                });
                self.calls.len() - 1
            }
        };
        let p = &mut self.calls[i];
        if let Some(id) = tc.id.filter(|s| !s.is_empty()) {
            if p.id.is_none() {
                p.id = Some(id);
            }
        }
        if let Some(f) = tc.function {
            if let Some(n) = f.name {
                // Most servers send the whole name once; a few stream it.
                if p.name != n {
                    p.name.push_str(&n);
                }
            }
            match f.arguments {
                Some(Value::String(s)) => p.arguments.push_str(&s),
                Some(Value::Null) | None => {}
                Some(other) => p.arguments.push_str(&other.to_string()),
            }
        }
    }

    pub fn finish(self) -> Completion {
        let stream_incomplete = !self.saw_done && self.finish_reason.is_none();
        let mut cut_off = false;
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                if stream_incomplete
                    && !p.arguments.trim().is_empty()
                    && serde_json::from_str::<Value>(&p.arguments).is_err()
                {
                    cut_off = true;
                }
                ToolCall {
                    id: p.id.unwrap_or_else(|| format!("call_{i}")),
                    name: p.name,
                    arguments: p.arguments,
                }
            })
            .collect();
        Completion {
            text: self.text,
            reasoning: self.reasoning,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
            stream_incomplete,
            cut_off,
        }
    }
}

/// Parses a non-streaming `chat.completion` body.
pub fn parse_whole(body: &str) -> Result<Completion, String> {
    let mut asm = Assembler::default();
    match asm.push(body) {
        Ok(_) => {}
        Err(ChunkError::Json(e)) => return Err(format!("not a chat completion: {e}")),
        Err(ChunkError::Provider(e)) => return Err(e),
    }
    asm.saw_done = true;
    Ok(asm.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_calls_without_index_and_split_arguments() {
        let mut a = Assembler::default();
        let chunks = [
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"c1","function":{"name":"read_file","arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"th\":\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"c2","function":{"name":"list_dir","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        ];
        for c in chunks {
            assert!(a.push(c).is_ok());
        }
        let c = a.finish();
        assert_eq!(c.tool_calls.len(), 2);
        assert_eq!(c.tool_calls[0].arguments, r#"{"path":"a"}"#);
        assert_eq!(c.tool_calls[1].name, "list_dir");
        assert_eq!(c.usage.map(|u| u.completion_tokens), Some(7));
        assert!(!c.stream_incomplete);
    }

    #[test]
    fn indexed_calls_interleave() {
        let mut a = Assembler::default();
        for c in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":""}},{"index":1,"id":"b","function":{"name":"y","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}},{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
        ] {
            assert!(a.push(c).is_ok());
        }
        let c = a.finish();
        assert_eq!(c.tool_calls[0].arguments, "{}");
        assert_eq!(c.tool_calls[1].arguments, "{}");
        assert!(c.stream_incomplete);
        assert!(!c.cut_off);
    }

    #[test]
    fn cut_off_arguments_are_flagged() {
        let mut a = Assembler::default();
        assert!(a
            .push(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":"{\"pa"}}]}}]}"#)
            .is_ok());
        assert!(a.finish().cut_off);
    }

    #[test]
    fn whole_body_and_garbage() {
        let c = parse_whole(r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#)
            .expect("parse");
        assert_eq!(c.text, "hi");
        assert!(parse_whole("<html>").is_err());
        let mut a = Assembler::default();
        assert!(a.push("{not json").is_err());
        assert!(matches!(
            a.push(r#"{"error":{"message":"overloaded"}}"#),
            Err(ChunkError::Provider(m)) if m == "overloaded"
        ));
    }
}
