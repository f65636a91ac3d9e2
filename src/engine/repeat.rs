//! A guard against a stream stuck repeating itself (small models loop).
//!
//! The streamed text's tail is looping when it is periodic: the same chunk
//! of at least [`MIN_UNIT`] bytes repeated at least [`MIN_COPIES`] times,
//! covering at least [`MIN_SPAN`] bytes. A shorter period (one character,
//! one short line) is caught too, since a text with period p also has every
//! multiple of p as a period. Each check is one comparison per candidate
//! period, most failing at the first byte, and runs after every
//! [`CHECK_EVERY`] new bytes, so a long reply costs little.

/// The shortest repeated chunk considered.
pub const MIN_UNIT: usize = 32;
/// The longest repeated chunk considered.
const MAX_UNIT: usize = 2048;
/// Copies of the chunk at the end of the text.
pub const MIN_COPIES: usize = 6;
/// The repeated tail spans at least this many bytes.
const MIN_SPAN: usize = 256;
const CHECK_EVERY: usize = 16;

#[derive(Debug, Default)]
pub struct RepeatGuard {
    text: String,
    checked_at: usize,
}

/// What a loop looks like once found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loop {
    /// The repeated chunk.
    pub unit: String,
    /// Bytes of text before the repetition started, plus one copy.
    pub keep: usize,
}

impl RepeatGuard {
    /// Feeds streamed text; `Some` once the tail is looping.
    pub fn push(&mut self, delta: &str) -> Option<Loop> {
        self.text.push_str(delta);
        if self.text.len() < self.checked_at + CHECK_EVERY {
            return None;
        }
        self.checked_at = self.text.len();
        find_loop(self.text.as_bytes()).map(|(unit, start)| {
            let s = &self.text;
            let mut keep = start + unit;
            while !s.is_char_boundary(keep) {
                keep += 1;
            }
            let mut from = start;
            while !s.is_char_boundary(from) {
                from += 1;
            }
            Loop {
                unit: s[from..keep.max(from)].to_string(),
                keep,
            }
        })
    }
}

/// The period of a looping tail and where the repetition starts.
fn find_loop(s: &[u8]) -> Option<(usize, usize)> {
    let n = s.len();
    for unit in MIN_UNIT..=MAX_UNIT.min(n / MIN_COPIES) {
        let span = (unit * MIN_COPIES).max(MIN_SPAN.div_ceil(unit) * unit);
        if span > n {
            break;
        }
        let tail = &s[n - span..];
        if tail[unit..] == tail[..span - unit] {
            // Walk back to where the repetition began.
            let mut start = n - span;
            while start > 0 && s[start - 1] == s[start - 1 + unit] {
                start -= 1;
            }
            return Some((unit, start));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str, piece: usize) -> Option<Loop> {
        let mut g = RepeatGuard::default();
        let chars: Vec<char> = text.chars().collect();
        for c in chars.chunks(piece) {
            if let Some(l) = g.push(&c.iter().collect::<String>()) {
                return Some(l);
            }
        }
        None
    }

    #[test]
    fn a_looping_tail_is_found_and_a_varied_text_is_not() {
        let sentence = "The quick brown fox jumps over the lazy dog again. ";
        let looping = format!("Intro text here.\n{}", sentence.repeat(20));
        let l = feed(&looping, 3).expect("loop");
        assert!(looping.starts_with(&looping[..l.keep]));
        assert!(
            l.keep <= "Intro text here.\n".len() + 2 * sentence.len(),
            "{l:?}"
        );
        let short = format!("x{}", "ab\n".repeat(200));
        assert!(feed(&short, 5).is_some(), "a short period is caught");
        let varied: String = (0..400)
            .map(|i| format!("line {i}: value = {}\n", i * 7))
            .collect();
        assert_eq!(feed(&varied, 4), None);
        let few = format!("{}tail", sentence.repeat(4));
        assert_eq!(feed(&few, 4), None, "four copies are not a loop");
        let unicode = format!("début {}", "é ça où — ".repeat(60));
        let l = feed(&unicode, 2).expect("loop");
        assert!(unicode.is_char_boundary(l.keep));
    }
}
