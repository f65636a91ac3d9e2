//! Redaction of secrets before anything leaves the tools: the model, the
//! editor (`tether/update`) and the store only ever see [`MARK`] where a
//! secret was.
//!
//! Two kinds of secret are found:
//! - **by content**: the formats in `secret_rules.toml` (a curated subset of
//!   the gitleaks rule list carried as data, with attribution, plus Tether's
//!   own rules for URL credentials and password/secret/token assignments).
//!   Every rule names keywords; one Aho-Corasick pass over the text finds which
//!   keywords occur and only those rules' regexes run, so text without any
//!   keyword costs one linear scan. Rules are compiled once per process.
//! - **by name**: the values of this process's environment variables named
//!   like `*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`, and Tether's own API key.
//!
//! A replaced secret is replaced whole (a PEM block from BEGIN to END, only the
//! password of `scheme://user:password@host`, only the value of `token=...`).
//! Live text is redacted with a [`StreamRedactor`], which holds back what could
//! still turn out to be part of a secret.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::Value;

/// What a secret value is replaced with.
pub const MARK: &str = "[REDACTED]";

/// The rule list, carried as data (see its header for sources and licence).
const RULES_TOML: &str = include_str!("../secret_rules.toml");

/// The rules, compiled once per process ([`Rules::get`]): immutable data.
static COMPILED: OnceLock<Rules> = OnceLock::new();

/// Environment values shorter than this are not treated as secrets
/// (redacting "1" would mangle every output).
const MIN_ENV_SECRET: usize = 6;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    global: GlobalSpec,
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalSpec {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    regex: String,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    keywords: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    name_group: Option<usize>,
    #[serde(default)]
    allow_name: Option<String>,
}

struct Rule {
    id: String,
    regex: Regex,
    secret_group: Option<usize>,
    entropy: f64,
    allow: Vec<Regex>,
    /// A capture holding the name the value was assigned to, and the names
    /// that say the value is not the secret itself (`token_file = ...`).
    allow_name: Option<(usize, Regex)>,
}

/// The compiled content rules.
pub struct Rules {
    rules: Vec<Rule>,
    global_allow: Vec<Regex>,
    keywords: AhoCorasick,
    /// For each keyword (by pattern index), the rules it switches on.
    keyword_rules: Vec<Vec<usize>>,
}

/// Compiles one pattern the way gitleaks (Go RE2) reads it: on bytes, with
/// ASCII classes (`\w`, `\s`, `\b`).
fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("(?-u){pattern}"))
        .size_limit(32 << 20)
        .build()
        .map_err(|e| format!("{pattern}: {e}"))
}

impl Rules {
    /// Parses and compiles the built-in rule list.
    fn builtin() -> Result<Rules, String> {
        Rules::parse(RULES_TOML)
    }

    fn parse(text: &str) -> Result<Rules, String> {
        let file: RuleFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let global_allow = file
            .global
            .allow
            .iter()
            .map(|p| compile(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::with_capacity(file.rules.len());
        let mut words: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (i, spec) in file.rules.into_iter().enumerate() {
            let ctx = |e: String| format!("rule {}: {e}", spec.id);
            if spec.keywords.is_empty() {
                return Err(ctx("no keywords (every rule needs one)".into()));
            }
            for k in &spec.keywords {
                let k = k.to_ascii_lowercase();
                match words.iter().position(|w| *w == k) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        words.push(k);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
            let regex = compile(&spec.regex).map_err(ctx)?;
            let groups = regex.captures_len();
            for g in [spec.secret_group, spec.name_group].into_iter().flatten() {
                if g >= groups {
                    return Err(ctx(format!("the regex has no group {g}")));
                }
            }
            let allow_name = match (spec.name_group, &spec.allow_name) {
                (Some(g), Some(p)) => Some((g, compile(p).map_err(ctx)?)),
                (None, None) => None,
                _ => return Err(ctx("name_group and allow_name go together".into())),
            };
            rules.push(Rule {
                regex,
                secret_group: spec.secret_group,
                entropy: spec.entropy.unwrap_or(0.0),
                allow: spec
                    .allow
                    .iter()
                    .map(|p| compile(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ctx)?,
                allow_name,
                id: spec.id,
            });
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&words)
            .map_err(|e| format!("keywords: {e}"))?;
        Ok(Rules {
            rules,
            global_allow,
            keywords,
            keyword_rules,
        })
    }

    /// The process-wide compiled rules (compiled on first use).
    pub fn get() -> &'static Rules {
        COMPILED.get_or_init(|| {
            // The list is part of the binary and a unit test compiles it, so
            // this cannot fail in a build that passed its tests.
            Rules::builtin().expect("the built-in secret rules compile")
        })
    }

    /// Compiles the rules on a background thread unless done: compiling
    /// takes ~20 ms, and an engine is built on the editor's `initialize`
    /// (LSP) or `session/new` (ACP), which should not wait for it. The first
    /// redaction waits if it comes first.
    pub fn prepare_in_background() {
        if COMPILED.get().is_some() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("tether-redact-rules".into())
            .spawn(|| {
                Rules::get();
            });
        if let Err(e) = spawned {
            tracing::debug!("secret rules will compile on first use: {e}");
        }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Byte ranges of secrets in `text` (unsorted, may overlap), with the id
    /// of the rule that found each.
    fn find<'a>(&'a self, text: &[u8], out: &mut Vec<(Range<usize>, &'a str)>) {
        let mut want = vec![false; self.rules.len()];
        let mut any = false;
        for m in self.keywords.find_overlapping_iter(text) {
            for &r in &self.keyword_rules[m.pattern().as_usize()] {
                want[r] = true;
                any = true;
            }
        }
        if !any {
            return;
        }
        for (rule, _) in self.rules.iter().zip(&want).filter(|(_, w)| **w) {
            for caps in rule.regex.captures_iter(text) {
                let Some(whole) = caps.get(0) else { continue };
                let secret = match rule.secret_group {
                    Some(g) => caps.get(g),
                    // As gitleaks: the first non-empty group, else the match.
                    None => (1..caps.len())
                        .find_map(|i| caps.get(i).filter(|m| !m.is_empty()))
                        .or(Some(whole)),
                };
                let Some(secret) = secret.filter(|s| !s.is_empty()) else {
                    continue;
                };
                let s = secret.as_bytes();
                if rule.entropy > 0.0 && entropy(s) < rule.entropy {
                    continue;
                }
                if rule.allow.iter().any(|r| r.is_match(s))
                    || self.global_allow.iter().any(|r| r.is_match(s))
                {
                    continue;
                }
                if let Some((g, allow)) = &rule.allow_name {
                    if caps.get(*g).is_some_and(|n| allow.is_match(n.as_bytes())) {
                        continue;
                    }
                }
                out.push((secret.range(), rule.id.as_str()));
            }
        }
    }
}

/// Shannon entropy of `s` in bits per byte.
fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Replaces secrets with [`MARK`]. Cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    /// Known secret values (from the environment), longest match first.
    values: Option<Arc<AhoCorasick>>,
    /// The same values, for [`StreamRedactor`]'s look-behind.
    value_list: Arc<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values themselves.
        f.debug_struct("Redactor")
            .field("values", &self.value_list.len())
            .finish()
    }
}

impl Default for Redactor {
    /// Content rules only, no known values.
    fn default() -> Self {
        Redactor::with_values(Vec::new())
    }
}

/// Whether an environment variable's name says it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.ends_with("_TOKEN")
        || n.ends_with("_SECRET")
        || n.contains("PASSWORD")
        || n.ends_with("_API_KEY")
        || n == "TOKEN"
}

impl Redactor {
    /// The content rules plus the secret values of an environment and `extra`
    /// known secrets (Tether's API key).
    pub fn from_env(env: &BTreeMap<String, String>, extra: &[&str]) -> Redactor {
        let values = env
            .iter()
            .filter(|(k, _)| is_secret_name(k))
            .map(|(_, v)| v.trim().to_string())
            .chain(extra.iter().map(|s| s.trim().to_string()))
            .collect();
        Redactor::with_values(values)
    }

    fn with_values(mut values: Vec<String>) -> Redactor {
        values.retain(|v| v.len() >= MIN_ENV_SECRET);
        values.sort();
        values.dedup();
        let matcher = if values.is_empty() {
            None
        } else {
            // Leftmost-longest: a secret containing another goes whole.
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&values)
            {
                Ok(ac) => Some(Arc::new(ac)),
                Err(e) => {
                    // Only a size limit can fail; say so rather than redact less.
                    tracing::error!("cannot index the secret values for redaction: {e}");
                    None
                }
            }
        };
        Rules::prepare_in_background();
        Redactor {
            values: matcher,
            value_list: Arc::new(values),
        }
    }

    /// The content rules (compiled by the first caller that needs them).
    fn rules(&self) -> &'static Rules {
        Rules::get()
    }

    /// Sorted, merged byte ranges of the secrets in `text`, on char boundaries.
    fn spans(&self, text: &str) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let mut found: Vec<(Range<usize>, &str)> = Vec::new();
        if let Some(ac) = &self.values {
            for m in ac.find_iter(bytes) {
                found.push((m.range(), "environment"));
            }
        }
        self.rules().find(bytes, &mut found);
        if found.is_empty() {
            return Vec::new();
        }
        let mut spans: Vec<Range<usize>> = found
            .into_iter()
            .map(|(r, _)| floor_boundary(text, r.start)..ceil_boundary(text, r.end))
            .collect();
        spans.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
        for r in spans {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// `text` with every secret replaced by [`MARK`].
    pub fn redact(&self, text: &str) -> String {
        let spans = self.spans(text);
        if spans.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for r in spans {
            out.push_str(&text[at..r.start]);
            out.push_str(MARK);
            at = r.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Which rules fire on `text` (for tests and diagnostics; never the values).
    pub fn rule_ids(&self, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        self.rules().find(text.as_bytes(), &mut found);
        let mut ids: Vec<String> = found.into_iter().map(|(_, id)| id.to_string()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether `text` holds a secret (the model was shown [`MARK`] there).
    pub fn finds_secret(&self, text: &str) -> bool {
        !self.spans(text).is_empty()
    }

    /// Redacts every string in a JSON value. A string that is itself JSON (a
    /// tool call's `arguments`) is redacted inside and serialized again, so
    /// its escapes never split a secret.
    pub fn redact_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact_json_text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact_json(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.redact_json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Redacts a string that may hold JSON text (tool-call arguments).
    pub fn redact_json_text(&self, s: &str) -> String {
        let t = s.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                let redacted = self.redact_json(&inner);
                if redacted == inner {
                    return s.to_string();
                }
                return redacted.to_string();
            }
        }
        self.redact(s)
    }

    /// A redactor for text that arrives in pieces (the model's stream).
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            pending: String::new(),
            shown: String::new(),
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Redacts streamed text: [`StreamRedactor::push`] returns the part of what
/// arrived so far that no later text can turn into (part of) a secret,
/// redacted; the rest waits for more text or [`StreamRedactor::finish`].
///
/// What is held back: a PEM private key block until its END line; on the
/// current line, a word that could belong to a secret (it holds a digit or one
/// of `_-=:/+@.~\`, a rule keyword, or is long) until six plain words follow
/// it or the line ends; and an end that is the beginning of a known secret
/// value. Prose goes out as it arrives, even a last word still growing: if
/// that word turns into a secret (`gh` + `p_…`), the rest of it is replaced,
/// so at most a few plain letters of a secret's start are shown.
pub struct StreamRedactor {
    redactor: Redactor,
    pending: String,
    /// What already went out of the current line (its end): the context a
    /// secret that starts there is recognised in.
    shown: String,
}

/// How much of the current line is kept as context.
const SHOWN_CONTEXT: usize = 512;

/// A private key block held back longer than this goes out anyway (redacted
/// as it stands; an 8192-bit RSA key is about 6.5 KiB).
const STREAM_HOLD_MAX: usize = 16 * 1024;

/// A line held back longer than this goes out up to its last word (which
/// keeps each push's work bounded).
const LINE_HOLD_MAX: usize = 4 * 1024;

/// Plain words after a suspicious word that release it.
const CLEAN_WORDS: usize = 6;

impl StreamRedactor {
    /// Adds `delta`; returns what can be shown now, redacted (maybe empty).
    pub fn push(&mut self, delta: &str) -> String {
        self.pending.push_str(delta);
        let cut = if self.pending.len() > STREAM_HOLD_MAX {
            self.pending.len()
        } else {
            self.safe_cut()
        };
        if cut == 0 {
            return String::new();
        }
        let out: String = self.pending.drain(..cut).collect();
        self.emit(out)
    }

    /// The rest, redacted.
    pub fn finish(&mut self) -> String {
        let out = std::mem::take(&mut self.pending);
        self.emit(out)
    }

    /// `out` redacted in the context of what its line already showed: a
    /// secret that started in a word already shown has the rest of it
    /// replaced.
    fn emit(&mut self, out: String) -> String {
        if out.is_empty() {
            return out;
        }
        let from = self.shown.len();
        let mut text = std::mem::take(&mut self.shown);
        text.push_str(&out);
        let mut red = String::with_capacity(out.len());
        let mut at = from;
        for r in self.redactor.spans(&text) {
            if r.end <= at {
                continue;
            }
            let start = r.start.max(at);
            red.push_str(&text[at..start]);
            red.push_str(MARK);
            at = r.end;
        }
        red.push_str(&text[at..]);
        let line = text.rfind('\n').map_or(0, |n| n + 1);
        let keep = ceil_boundary(&text, line.max(text.len().saturating_sub(SHOWN_CONTEXT)));
        self.shown = text[keep..].to_string();
        red
    }

    /// How many bytes of `pending` can go out.
    fn safe_cut(&self) -> usize {
        let p = self.pending.as_str();
        // An unterminated private key block: hold from its line on.
        if let Some(begin) = p.rfind("-----BEGIN").or_else(|| p.rfind("-----begin")) {
            let rest = &p[begin..];
            let private = rest.contains("PRIVATE KEY") || rest.contains("private key");
            if private && !rest.contains("-----END") && !rest.contains("-----end") {
                let line = p[..begin].rfind('\n').map_or(0, |n| n + 1);
                return self.before_value_prefix(line);
            }
        }
        // Whole lines are final.
        let line_start = p.rfind('\n').map_or(0, |n| n + 1);
        let line = &p[line_start..];
        // The word the line's shown part ends in, which the first word here
        // continues.
        let carried = if line_start == 0 && !p.starts_with(char::is_whitespace) {
            let s = self.shown.as_str();
            &s[s.rfind(char::is_whitespace).map_or(0, |i| i + 1)..]
        } else {
            ""
        };
        let mut cut = line_start;
        let mut at = 0;
        // Words since the last suspicious one, and whether one is waiting.
        let mut clean = 0;
        let mut blocked = false;
        for word in line.split_inclusive(char::is_whitespace) {
            let complete = word.ends_with(char::is_whitespace);
            let w = word.trim_end();
            let suspicious = if at == 0 && !carried.is_empty() {
                self.suspicious(&format!("{carried}{w}"))
            } else {
                self.suspicious(w)
            };
            let end = at + word.len();
            at = end;
            // The last word may still grow: it goes out only while it is
            // plain (if it turns into a secret, the rest is replaced).
            if !complete && suspicious {
                break;
            }
            if suspicious {
                blocked = true;
                clean = 0;
                continue;
            }
            clean += 1;
            // A secret spans at most a few words after its name
            // (`Authorization: Bearer xyz`): enough plain words after a
            // suspicious one close what it could start.
            if !blocked || clean >= CLEAN_WORDS {
                cut = line_start + end;
                blocked = false;
            }
        }
        if p.len() - cut > LINE_HOLD_MAX {
            // Held too long: all but the last word goes out.
            let last = p.trim_end().rfind(char::is_whitespace).map_or(0, |i| i + 1);
            cut = cut.max(last);
            if p.len() - cut > LINE_HOLD_MAX {
                cut = p.len();
            }
        }
        self.before_value_prefix(cut)
    }

    /// Whether `word` could be (part of) a secret or name one.
    fn suspicious(&self, word: &str) -> bool {
        if word.len() >= 24 {
            return true;
        }
        // A short number ("1,", "20.", "3.14", "2026") is no rule's secret:
        // holding it would stop counting or a list of figures from streaming.
        if word.len() <= 8
            && word.chars().any(|c| c.is_ascii_digit())
            && word
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | ';' | ')' | '(' | '%'))
        {
            return false;
        }
        if word.chars().any(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    '_' | '-' | '=' | ':' | '/' | '+' | '@' | '.' | '~' | '\\'
                )
        }) && !is_plain_punctuated(word)
        {
            return true;
        }
        self.redactor.rules().keywords.is_match(word.as_bytes())
    }

    /// Moves `cut` back so that the text going out does not end with the
    /// beginning of a known secret value.
    fn before_value_prefix(&self, cut: usize) -> usize {
        let p = &self.pending[..cut];
        let mut cut = cut;
        for v in self.redactor.value_list.iter() {
            for k in (1..v.len()).rev() {
                if v.is_char_boundary(k) && p.ends_with(&v[..k]) {
                    cut = cut.min(p.len() - k);
                    break;
                }
            }
        }
        cut
    }
}

/// A word of letters with sentence punctuation only at its end (`done.`,
/// `well,`): the punctuation does not make it suspicious.
fn is_plain_punctuated(w: &str) -> bool {
    let core = w.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '…']);
    !core.is_empty() && core.chars().all(char::is_alphabetic) && w.len() - core.len() <= 3
}

#[cfg(test)]
mod tests;
