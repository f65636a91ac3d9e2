//! The model's context window: how many tokens one request may hold.
//!
//! Found, in this order of trust: what the server itself says (llama.cpp's
//! `/props` `n_ctx`, vLLM's `max_model_len` and the `context_length` of
//! OpenRouter-style model lists in `/v1/models`), then a table of well-known
//! hosted models, then learned from an overflow error's own text (llama.cpp:
//! "exceeds the available context size (1024 tokens)", OpenAI: "maximum
//! context length is 8192 tokens"). A window given in config wins over all
//! of these (that is the caller's choice, not this module's).
//!
//! **Invariant:** discovery never fails a turn: every miss is `None`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Where a window size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSource {
    /// llama.cpp's `GET /props`.
    LlamaCppProps,
    /// An entry of `GET /v1/models` (vLLM `max_model_len`, `context_length`).
    ModelList,
    /// Tether's table of well-known models.
    KnownModel,
    /// Parsed from an overflow error the server sent.
    OverflowError,
}

impl fmt::Display for WindowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowSource::LlamaCppProps => "the server's /props (llama.cpp)",
            WindowSource::ModelList => "the server's model list",
            WindowSource::KnownModel => "Tether's table of known models",
            WindowSource::OverflowError => "an overflow error from the server",
        })
    }
}

/// A context window in tokens, and where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub tokens: u64,
    pub source: WindowSource,
}

/// Asks the server, then the table. `base` is the API base (`…/v1`);
/// `auth` adds the key and configured headers to a request.
pub async fn discover(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    auth: &(dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync),
) -> Option<Window> {
    let get = |url: String| async move {
        let resp = auth(http.get(url))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json::<Value>().await.ok()
    };
    if let Some(tokens) = get(format!("{base}/models"))
        .await
        .and_then(|list| from_model_list(&list, model))
    {
        return Some(Window {
            tokens,
            source: WindowSource::ModelList,
        });
    }
    // llama.cpp serves `/props` beside `/v1`.
    let origin = base.trim_end_matches('/').trim_end_matches("/v1");
    if let Some(tokens) = get(format!("{origin}/props"))
        .await
        .and_then(|p| from_llama_props(&p))
    {
        return Some(Window {
            tokens,
            source: WindowSource::LlamaCppProps,
        });
    }
    known_model(model).map(|tokens| Window {
        tokens,
        source: WindowSource::KnownModel,
    })
}

/// llama.cpp's `/props`: the per-slot `n_ctx` (what one request may use).
pub fn from_llama_props(props: &Value) -> Option<u64> {
    props
        .pointer("/default_generation_settings/n_ctx")
        .or_else(|| props.get("n_ctx"))
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
}

/// An OpenAI-shaped model list whose entry for `model` states its window.
pub fn from_model_list(list: &Value, model: &str) -> Option<u64> {
    let entries = list.get("data").and_then(Value::as_array)?;
    let entry = entries
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(model))?;
    ["max_model_len", "context_length", "max_context_length"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_u64))
        .filter(|n| *n > 0)
}

/// Well-known hosted models (prefix match on the model id, longest first).
pub fn known_model(model: &str) -> Option<u64> {
    const TABLE: &[(&str, u64)] = &[
        ("gpt-4.1", 1_047_576),
        ("gpt-4o", 128_000),
        ("gpt-4-turbo", 128_000),
        ("gpt-4", 8_192),
        ("gpt-3.5-turbo", 16_385),
        ("gpt-5", 400_000),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4-mini", 200_000),
        ("claude-", 200_000),
        ("gemini-1.5", 1_048_576),
        ("gemini-2", 1_048_576),
        ("deepseek-chat", 128_000),
        ("deepseek-reasoner", 128_000),
    ];
    // Provider prefixes such as `openai/gpt-4o` (OpenRouter) are dropped.
    let id = model.rsplit('/').next().unwrap_or(model);
    TABLE
        .iter()
        .filter(|(prefix, _)| id.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, n)| *n)
}

/// The window stated in a context-overflow error, if the text is one.
pub fn from_overflow_error(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    // llama.cpp: "request (3160 tokens) exceeds the available context size (1024 tokens)"
    // OpenAI: "This model's maximum context length is 8192 tokens. However, …"
    // vLLM: "This model's maximum context length is 2048 tokens. However, you requested …"
    // Others: "context window of 32768 tokens", "context length of 4096".
    for marker in [
        "available context size",
        "maximum context length is",
        "maximum context length of",
        "context window of",
        "context length of",
        "context_length_exceeded",
    ] {
        if let Some(at) = lower.find(marker) {
            if let Some(n) = first_number(&lower[at + marker.len()..]) {
                return Some(n);
            }
        }
    }
    None
}

/// The prompt's own size stated in an overflow error, if any (llama.cpp:
/// "request (3160 tokens) exceeds …"; OpenAI's older form: "your messages
/// resulted in 9000 tokens"). OpenAI's "you requested N tokens" counts the
/// output cap too, so it is not read.
pub fn prompt_tokens_in_overflow_error(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    ["request (", "your messages resulted in"]
        .iter()
        .find_map(|marker| {
            let at = lower.find(marker)?;
            first_number(&lower[at + marker.len()..])
        })
}

/// Whether an error text says the request did not fit the window.
pub fn is_overflow_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "exceeds the available context size",
        "maximum context length",
        "context_length_exceeded",
        "context window",
        "too many tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// The first run of digits within the next few characters.
fn first_number(s: &str) -> Option<u64> {
    let s = crate::text::prefix(s, crate::text::Max::Chars(24));
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama_cpp_props_give_the_slot_window() {
        let props = json!({"default_generation_settings": {"n_ctx": 2048}, "total_slots": 1});
        assert_eq!(from_llama_props(&props), Some(2048));
        assert_eq!(from_llama_props(&json!({"n_ctx": 0})), None);
        assert_eq!(from_llama_props(&json!({})), None);
    }

    #[test]
    fn model_lists_state_the_window_of_the_listed_model_only() {
        let vllm = json!({"data": [
            {"id": "other", "max_model_len": 4096},
            {"id": "qwen", "max_model_len": 32768}
        ]});
        assert_eq!(from_model_list(&vllm, "qwen"), Some(32768));
        assert_eq!(from_model_list(&vllm, "missing"), None);
        let openrouter = json!({"data": [{"id": "x/y", "context_length": 65536}]});
        assert_eq!(from_model_list(&openrouter, "x/y"), Some(65536));
        let plain = json!({"data": [{"id": "gpt-4o", "object": "model"}]});
        assert_eq!(from_model_list(&plain, "gpt-4o"), None);
    }

    #[test]
    fn known_models_match_the_longest_prefix() {
        assert_eq!(known_model("gpt-4o-mini"), Some(128_000));
        assert_eq!(known_model("gpt-4-0613"), Some(8_192));
        assert_eq!(known_model("gpt-4.1-mini"), Some(1_047_576));
        assert_eq!(known_model("openai/gpt-4o"), Some(128_000));
        assert_eq!(known_model("claude-sonnet-4"), Some(200_000));
        assert_eq!(known_model("qwen2.5-coder"), None);
    }

    #[test]
    fn overflow_errors_of_common_servers_are_read() {
        let llama = "request (3160 tokens) exceeds the available context size (1024 tokens), try increasing it";
        assert!(is_overflow_error(llama));
        assert_eq!(from_overflow_error(llama), Some(1024));
        let openai = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.";
        assert!(is_overflow_error(openai));
        assert_eq!(from_overflow_error(openai), Some(8192));
        let big = "maximum context length is 128,000 tokens";
        assert_eq!(from_overflow_error(big), Some(128_000));
        assert!(!is_overflow_error("model not found"));
        assert_eq!(prompt_tokens_in_overflow_error(llama), Some(3160));
        assert_eq!(prompt_tokens_in_overflow_error(openai), Some(9000));
        let with_output = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (5000 in the messages, 4000 in the completion).";
        assert_eq!(prompt_tokens_in_overflow_error(with_output), None);
        assert_eq!(from_overflow_error("rate limited, retry in 20 s"), None);
    }
}
