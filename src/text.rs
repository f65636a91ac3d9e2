//! Cutting text to a size: the one place it is done. A limit counts
//! characters (what a person reads: titles, one-line summaries) or bytes
//! (what a buffer or a context window holds); either way a cut never falls
//! inside a character, and [`truncate`] says that something was cut with the
//! mark the caller chooses.

use std::borrow::Cow;

/// How much text to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    /// At most this many characters (`char`s).
    Chars(usize),
    /// At most this many bytes, cut on a char boundary.
    Bytes(usize),
}

/// The longest prefix of `s` within `max`.
pub fn prefix(s: &str, max: Max) -> &str {
    match max {
        Max::Bytes(n) => &s[..floor_char_boundary(s, n)],
        Max::Chars(n) => match s.char_indices().nth(n) {
            Some((at, _)) => &s[..at],
            None => s,
        },
    }
}

/// `s` within `max`, followed by `mark` when something was cut (the mark is
/// not counted in `max`).
pub fn truncate<'a>(s: &'a str, max: Max, mark: &str) -> Cow<'a, str> {
    let kept = prefix(s, max);
    if kept.len() == s.len() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("{kept}{mark}"))
    }
}

/// The first line of `s`, at most `max` chars, with an ellipsis if anything
/// (the rest of the line, or more lines) was left out.
pub fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    let kept = prefix(line, Max::Chars(max));
    if kept.len() < line.len() || s.trim_end().contains('\n') {
        format!("{kept}…")
    } else {
        kept.to_string()
    }
}

/// The largest char boundary of `s` at or below byte `i`.
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    let mut i = i;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_count_chars_or_bytes_and_never_split_a_char() {
        assert_eq!(prefix("héllo", Max::Chars(2)), "hé");
        assert_eq!(prefix("héllo", Max::Bytes(2)), "h");
        assert_eq!(prefix("héllo", Max::Bytes(3)), "hé");
        assert_eq!(prefix("hi", Max::Chars(5)), "hi");
        assert_eq!(prefix("hi", Max::Bytes(0)), "");
        assert_eq!(truncate("héllo", Max::Chars(5), "…"), "héllo");
        assert_eq!(truncate("héllo", Max::Chars(4), "…"), "héll…");
        assert_eq!(truncate("héllo", Max::Bytes(2), " [cut]"), "h [cut]");
        assert!(matches!(
            truncate("ok", Max::Bytes(2), "…"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn first_line_marks_a_cut_line_and_more_lines() {
        assert_eq!(first_line("one line", 20), "one line");
        assert_eq!(first_line("one line", 3), "one…");
        assert_eq!(first_line("first\nsecond", 20), "first…");
        assert_eq!(first_line("only\n", 20), "only");
        assert_eq!(first_line("", 5), "");
    }
}
