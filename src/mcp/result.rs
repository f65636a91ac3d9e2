//! An MCP `tools/call` result as text for the model: text blocks as they
//! are, images and audio as a short note (the model here reads text),
//! embedded resources by their text, links by their URI.

use serde_json::Value;

/// The text the model gets, and whether the server reported a tool error.
pub fn to_text(result: &Value) -> (String, bool) {
    let is_error = result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut parts: Vec<String> = Vec::new();
    for block in result
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        parts.push(block_text(block));
    }
    if parts.is_empty() {
        if let Some(s) = result.get("structuredContent").filter(|v| !v.is_null()) {
            parts.push(s.to_string());
        }
    }
    if parts.is_empty() {
        parts.push("(the tool returned no content)".into());
    }
    (parts.join("\n"), is_error)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Size in bytes of base64 `data`, roughly.
fn decoded_len(data: &str) -> usize {
    data.len() / 4 * 3
}

fn block_text(block: &Value) -> String {
    match str_of(block, "type") {
        "text" => str_of(block, "text").to_string(),
        "image" => format!(
            "[image {} of about {} bytes: not shown to the model]",
            str_of(block, "mimeType"),
            decoded_len(str_of(block, "data"))
        ),
        "audio" => format!(
            "[audio {} of about {} bytes: not shown to the model]",
            str_of(block, "mimeType"),
            decoded_len(str_of(block, "data"))
        ),
        "resource" => {
            let r = block.get("resource").unwrap_or(&Value::Null);
            let uri = str_of(r, "uri");
            match r.get("text").and_then(Value::as_str) {
                Some(t) => format!("[resource {uri}]\n{t}"),
                None => format!(
                    "[resource {uri} ({}), binary, about {} bytes: not shown]",
                    str_of(r, "mimeType"),
                    decoded_len(str_of(r, "blob"))
                ),
            }
        }
        "resource_link" => {
            let name = str_of(block, "name");
            format!("[resource link {} {name}]", str_of(block, "uri"))
        }
        other => format!("[content of type `{other}` not shown]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_images_and_resources_become_text() {
        let r = json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
            {"type": "resource", "resource": {"uri": "file:///b", "mimeType": "application/gzip", "blob": "AAAAAAAA"}},
            {"type": "resource_link", "uri": "file:///c", "name": "c"}
        ]});
        let (t, err) = to_text(&r);
        assert!(!err);
        assert_eq!(
            t,
            "hello\n[image image/png of about 3 bytes: not shown to the model]\n[resource file:///a]\nbody\n[resource file:///b (application/gzip), binary, about 6 bytes: not shown]\n[resource link file:///c c]"
        );
    }

    #[test]
    fn errors_and_structured_content() {
        let (t, err) =
            to_text(&json!({"content": [{"type": "text", "text": "no"}], "isError": true}));
        assert!(err);
        assert_eq!(t, "no");
        let (t, _) = to_text(&json!({"content": [], "structuredContent": {"a": 1}}));
        assert_eq!(t, "{\"a\":1}");
        let (t, _) = to_text(&json!({}));
        assert_eq!(t, "(the tool returned no content)");
    }
}
