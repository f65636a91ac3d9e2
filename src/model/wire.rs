//! Lenient Chat Completions wire parsing: our own types, every field an
//! `Option` (or a raw `Value` where providers disagree on the type), so that
//! one server's quirk never loses another's reply.
//!
//! Owns the assembly of one response from its chunks. Quirks handled:
//! - tool-call deltas without `index` (matched by `id`, then by position), with
//!   `id`/`name` only in the first chunk, or with every call numbered `0`;
//! - `arguments` split across any number of chunks, or sent as an object;
//! - `reasoning_content` (vLLM, DeepSeek, llama.cpp) or `reasoning`
//!   (OpenRouter, Ollama) next to the content;
//! - `usage` in the last chunk, in every chunk, under `x_groq`, or nowhere;
//! - a missing `finish_reason` or `[DONE]`, `choices: null`, content given as
//!   parts, numbers sent as strings;
//! - one `chat.completion` body despite `stream: true` ([`parse_whole`]).
//!
//! Nothing here panics on any input; a chunk that cannot be read at all is an
//! error the caller may skip.

use serde::Deserialize;
use serde_json::Value;

use super::StreamEvent;

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<Value>,
    /// Groq reports usage as `x_groq.usage` in the last chunk.
    #[serde(default)]
    x_groq: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: Option<Value>,
    #[serde(default)]
    delta: Option<Delta>,
    /// Non-streaming bodies carry `message` instead of `delta`.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<Value>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<Value>,
    /// Usually a string; some servers send an object.
    #[serde(default)]
    arguments: Option<Value>,
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
    /// The raw argument text as the model sent it (may be invalid JSON; the
    /// tool reports that back to the model).
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
    /// Ended, incomplete, while tool-call arguments were still unfinished JSON.
    pub cut_off: bool,
}

impl Completion {
    /// Nothing at all came back (no text, reasoning or tool call).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.reasoning.is_empty() && self.tool_calls.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChunkError {
    /// The provider reported an error inside the stream or body, with its
    /// numeric code when it gave one (OpenRouter sends HTTP-like codes).
    Provider { message: String, code: Option<u64> },
    /// The chunk is not JSON we can read (the caller may skip it).
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
    /// `data: [DONE]` was received.
    pub saw_done: bool,
}

/// A number given as a number, a float or a string.
fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string given as a string or a number.
fn lenient_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Some servers send content parts: [{type:"text", text:"…"}].
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => String::new(),
    }
}

fn usage_of(v: &Value) -> Option<Usage> {
    let num = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k).and_then(lenient_u64));
    let prompt = num(&["prompt_tokens", "input_tokens"]);
    let completion = num(&["completion_tokens", "output_tokens"]);
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
    })
}

fn provider_error(err: &Value) -> Option<ChunkError> {
    let message = match err {
        Value::Null | Value::Bool(false) => return None,
        Value::String(s) => s.clone(),
        _ => err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string()),
    };
    let code = err
        .get("code")
        .and_then(lenient_u64)
        .or_else(|| err.get("status").and_then(lenient_u64));
    Some(ChunkError::Provider { message, code })
}

/// Whether `s` is one complete JSON value.
fn is_complete_json(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

impl Assembler {
    /// Feeds one SSE `data:` payload; returns what should be shown at once.
    pub fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ChunkError> {
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| ChunkError::Json(e.to_string()))?;
        self.push_chunk(chunk)
    }

    fn push_chunk(&mut self, chunk: Chunk) -> Result<Vec<StreamEvent>, ChunkError> {
        if let Some(e) = chunk.error.as_ref().and_then(provider_error) {
            return Err(e);
        }
        let mut out = Vec::new();
        let usage = chunk
            .usage
            .as_ref()
            .or_else(|| chunk.x_groq.as_ref().and_then(|x| x.get("usage")))
            .and_then(usage_of);
        if let Some(u) = usage {
            self.usage = Some(u);
        }
        for choice in chunk.choices.unwrap_or_default() {
            // Only the first choice is ours (n = 1); a server may still number it.
            if choice
                .index
                .as_ref()
                .and_then(lenient_u64)
                .is_some_and(|i| i != 0)
            {
                continue;
            }
            if let Some(fr) = choice
                .finish_reason
                .as_ref()
                .and_then(lenient_string)
                .filter(|s| !s.is_empty())
            {
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
            let reasoning = delta
                .reasoning_content
                .as_ref()
                .or(delta.reasoning.as_ref())
                .map(content_text);
            if let Some(r) = reasoning {
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

    /// Which partial call a delta continues (`None`: it starts a new one).
    ///
    /// By `index` when given (the latest call with that index, unless the
    /// delta brings a different `id`: some servers number every call 0); else
    /// by `id`; a delta with neither continues the last call, unless it names
    /// a function and the last call's arguments are already complete.
    fn slot(&self, index: Option<u64>, id: Option<&str>, name: Option<&str>) -> Option<usize> {
        let by_id = |id: &str| self.calls.iter().position(|c| c.id.as_deref() == Some(id));
        if let Some(ix) = index {
            if let Some(i) = self.calls.iter().rposition(|c| c.index == Some(ix)) {
                return match (id, self.calls[i].id.as_deref()) {
                    (Some(new), Some(old)) if new != old => by_id(new),
                    _ => Some(i),
                };
            }
            if let Some(id) = id {
                return by_id(id);
            }
            if name.is_some() {
                return None;
            }
            // A new index with neither id nor name: the server started
            // numbering after the first chunk of the last call.
            let last = self.calls.len().checked_sub(1)?;
            return self.calls[last].index.is_none().then_some(last);
        }
        if let Some(id) = id {
            return by_id(id);
        }
        let last = self.calls.len().checked_sub(1)?;
        match name {
            None => Some(last),
            Some(n) => {
                let l = &self.calls[last];
                let unfinished = !l.arguments.trim().is_empty() && !is_complete_json(&l.arguments);
                (l.name == n && unfinished).then_some(last)
            }
        }
    }

    fn push_call(&mut self, tc: ToolCallDelta) {
        let index = tc.index.as_ref().and_then(lenient_u64);
        let id = tc
            .id
            .as_ref()
            .and_then(lenient_string)
            .filter(|s| !s.is_empty());
        let (name, arguments) = match tc.function {
            Some(f) => (
                f.name
                    .as_ref()
                    .and_then(lenient_string)
                    .filter(|s| !s.is_empty()),
                f.arguments,
            ),
            None => (None, None),
        };
        let i = match self.slot(index, id.as_deref(), name.as_deref()) {
            Some(i) => i,
            None => {
                self.calls.push(Partial::default());
                self.calls.len() - 1
            }
        };
        let p = &mut self.calls[i];
        if p.index.is_none() {
            p.index = index;
        }
        if p.id.is_none() {
            p.id = id;
        }
        if let Some(n) = name {
            // Most servers send the whole name once (some repeat it in every
            // chunk); a few stream it in pieces.
            if p.name != n {
                p.name.push_str(&n);
            }
        }
        match arguments {
            Some(Value::String(s)) => p.arguments.push_str(&s),
            Some(Value::Null) | None => {}
            Some(other) => p.arguments.push_str(&other.to_string()),
        }
    }

    pub fn finish(self) -> Completion {
        let stream_incomplete = !self.saw_done && self.finish_reason.is_none();
        let mut cut_off = false;
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .filter(|p| !(p.name.is_empty() && p.arguments.trim().is_empty() && p.id.is_none()))
            .map(|p| {
                if stream_incomplete
                    && !p.arguments.trim().is_empty()
                    && !is_complete_json(&p.arguments)
                {
                    cut_off = true;
                }
                ToolCall {
                    id: p.id.unwrap_or_else(|| {
                        format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
                    }),
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

/// Parses a response that is not an event stream: normally one
/// `chat.completion` object; also an array of chunks, or chunks one per line
/// (NDJSON, or SSE sent as `application/json`).
pub fn parse_whole(body: &str) -> Result<Completion, ChunkError> {
    let body = body.trim_start_matches('\u{feff}').trim();
    let mut asm = Assembler::default();
    match serde_json::from_str::<Chunk>(body) {
        Ok(chunk) => {
            asm.push_chunk(chunk)?;
        }
        Err(whole_err) => {
            if let Ok(chunks) = serde_json::from_str::<Vec<Chunk>>(body) {
                for c in chunks {
                    asm.push_chunk(c)?;
                }
            } else {
                let lines: Vec<&str> = body
                    .lines()
                    .map(|l| {
                        let l = l.trim();
                        l.strip_prefix("data:").map(str::trim_start).unwrap_or(l)
                    })
                    .filter(|l| !l.is_empty() && *l != "[DONE]")
                    .collect();
                let chunks: Option<Vec<Chunk>> = (lines.len() > 1)
                    .then(|| lines.iter().map(|l| serde_json::from_str(l).ok()).collect())
                    .flatten();
                let Some(chunks) = chunks else {
                    return Err(ChunkError::Json(format!(
                        "not a chat completion: {whole_err}"
                    )));
                };
                for c in chunks {
                    asm.push_chunk(c)?;
                }
            }
        }
    }
    asm.saw_done = true;
    Ok(asm.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(chunks: &[&str]) -> Completion {
        let mut a = Assembler::default();
        for c in chunks {
            assert!(a.push(c).is_ok(), "chunk rejected: {c}");
        }
        a.finish()
    }

    #[test]
    fn assembles_calls_without_index_and_split_arguments() {
        let c = assemble(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"c1","function":{"name":"read_file","arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"th\":\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"c2","function":{"name":"list_dir","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        ]);
        assert_eq!(c.tool_calls.len(), 2);
        assert_eq!(c.tool_calls[0].arguments, r#"{"path":"a"}"#);
        assert_eq!(c.tool_calls[1].name, "list_dir");
        assert_eq!(c.usage.map(|u| u.completion_tokens), Some(7));
        assert!(!c.stream_incomplete);
    }

    #[test]
    fn calls_without_index_or_id_split_by_name() {
        // No index, no id; the name comes once per call.
        let c = assemble(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"read_file","arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"read_file","arguments":"{\"path\":\"b\"}"}}]}}]}"#,
        ]);
        let args: Vec<&str> = c.tool_calls.iter().map(|t| t.arguments.as_str()).collect();
        assert_eq!(args, [r#"{"path":"a"}"#, r#"{"path":"b"}"#]);
        assert_ne!(
            c.tool_calls[0].id, c.tool_calls[1].id,
            "generated ids are distinct"
        );
        // The name repeated in every chunk of one call.
        let c = assemble(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"read_file","arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"read_file","arguments":"\"a\"}"}}]}}]}"#,
        ]);
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].name, "read_file");
        assert_eq!(c.tool_calls[0].arguments, r#"{"path":"a"}"#);
    }

    #[test]
    fn every_call_numbered_zero_is_told_apart_by_id() {
        let c = assemble(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":"{\"n\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"y","arguments":"{\"n\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"2}"}}]}}]}"#,
        ]);
        let got: Vec<(&str, &str, &str)> = c
            .tool_calls
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str(), t.arguments.as_str()))
            .collect();
        assert_eq!(got, [("a", "x", r#"{"n":1}"#), ("b", "y", r#"{"n":2}"#)]);
    }

    #[test]
    fn indexed_calls_interleave() {
        let c = assemble(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":""}},{"index":1,"id":"b","function":{"name":"y","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}},{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
        ]);
        assert_eq!(c.tool_calls[0].arguments, "{}");
        assert_eq!(c.tool_calls[1].arguments, "{}");
        assert!(c.stream_incomplete);
        assert!(!c.cut_off);
    }

    #[test]
    fn odd_types_and_nulls_are_tolerated() {
        let c = assemble(&[
            r#"{"choices":null}"#,
            r#"{"choices":[{"index":"0","delta":{"content":[{"type":"text","text":"he"}],"reasoning":"hmm"}}]}"#,
            r#"{"choices":[{"index":1,"delta":{"content":"OTHER CHOICE"}}]}"#,
            r#"{"choices":[{"delta":{"content":"llo","tool_calls":[{"index":"0","id":7,"function":{"name":"x","arguments":{"a":1}}}]},"finish_reason":null}],"usage":null}"#,
            r#"{"choices":[],"x_groq":{"usage":{"prompt_tokens":3.0,"completion_tokens":"4"}}}"#,
        ]);
        assert_eq!(c.text, "hello");
        assert_eq!(c.reasoning, "hmm");
        assert_eq!(c.tool_calls[0].id, "7");
        assert_eq!(c.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(
            c.usage,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
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
        let c = parse_whole(r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#)
            .expect("parse");
        assert_eq!(c.text, "hi");
        assert_eq!(c.usage.map(|u| u.prompt_tokens), Some(1));
        assert!(parse_whole("<html>").is_err());
        // SSE lines sent as one body.
        let c = parse_whole("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n")
            .expect("lines");
        assert_eq!(c.text, "ab");
        let mut a = Assembler::default();
        assert!(a.push("{not json").is_err());
        assert_eq!(
            a.push(r#"{"error":{"message":"overloaded","code":502}}"#),
            Err(ChunkError::Provider {
                message: "overloaded".into(),
                code: Some(502)
            })
        );
        assert!(matches!(
            parse_whole(r#"{"error":"quota"}"#),
            Err(ChunkError::Provider { message, code: None }) if message == "quota"
        ));
    }

    proptest::proptest! {
        /// No sequence of odd chunks makes the assembler panic.
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::sample::select(vec![
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"x","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"y"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b"}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":"zz","id":null,"function":null}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{}]}}]}"#,
            r#"{"choices":[{"delta":{"content":"hi","reasoning":[1]}}]}"#,
            r#"{"choices":[{"finish_reason":7}],"usage":{"prompt_tokens":-1}}"#,
            r#"{"choices":null,"usage":"lots"}"#,
            r#"{"error":null}"#,
            r#"{"error":{"code":"x"}}"#,
            "[]", "null", "{", "",
        ]), 0..20)) {
            let mut a = Assembler::default();
            for c in &chunks {
                let _ = a.push(c);
            }
            let done = a.finish();
            proptest::prop_assert!(done.tool_calls.iter().all(|t| !t.id.is_empty()));
            let _ = parse_whole(&chunks.concat());
        }
    }
}
