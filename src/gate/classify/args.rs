//! Helpers for reading command-line arguments (options, operands, values),
//! and [`Names`], the sets of program names looked up for every command.

use super::words::Arg;

/// The last `/`-separated component (`/usr/bin/rm` → `rm`; called for
/// nearly every word judged, so a plain byte scan).
pub(super) fn base(s: &str) -> &str {
    match s.bytes().rposition(|b| b == b'/') {
        Some(i) => s.get(i + 1..).unwrap_or(s),
        None => s,
    }
}

pub(super) fn rest(args: &[Arg], i: usize) -> Vec<Arg> {
    args.get(i..).unwrap_or(&[]).to_vec()
}

/// `-abc` style bundle containing `c` (not a `--long` option).
pub(super) fn short(o: &str, c: char) -> bool {
    o.strip_prefix('-')
        .is_some_and(|r| !r.starts_with('-') && r.contains(c))
}

pub(super) fn is_opt(t: &str) -> bool {
    t.starts_with('-') && t.len() > 1
}

/// Index of the first operand: options are skipped, `values` take the next
/// argument, `--` ends the options.
pub(super) fn skip_opts(args: &[Arg], values: &[&str]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if !is_opt(t) {
            return i;
        }
        i += if values.contains(&t) { 2 } else { 1 };
    }
    i
}

/// Splits arguments into options (texts) and operands; `values` take the next
/// argument (which is then neither).
pub(super) fn split_opts<'a>(args: &'a [Arg], values: &[&str]) -> (Vec<&'a str>, Vec<&'a Arg>) {
    let (mut opts, mut pos) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let t = a.text.as_str();
        if t == "--" {
            pos.extend(it.by_ref());
            break;
        }
        if is_opt(t) {
            opts.push(t);
            if values.contains(&t) {
                it.next();
            }
        } else {
            pos.push(a);
        }
    }
    (opts, pos)
}

/// Value of `-x V`, `--long V`, `--long=V` or `-xV` (first occurrence).
pub(super) fn opt_value(args: &[Arg], names: &[&str]) -> Vec<Arg> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" {
            break;
        }
        i += 1;
        for n in names {
            if t == *n {
                if let Some(v) = args.get(i) {
                    out.push(v.clone());
                    i += 1;
                }
            } else if let Some(v) = t.strip_prefix(n) {
                let attached = if n.starts_with("--") {
                    v.strip_prefix('=')
                } else {
                    Some(v)
                };
                if let Some(v) =
                    attached.filter(|v| n.starts_with("--") || (n.len() == 2 && !v.is_empty()))
                {
                    out.push(Arg {
                        text: v.to_string(),
                        dynamic: a.dynamic,
                    });
                }
            }
        }
    }
    out
}

/// A fixed set of program names with a quick test of a name's length and
/// first byte before the list is scanned: nearly every name judged is in
/// none of the sets, and the sets are looked up several times per command.
pub(super) struct Names {
    list: &'static [&'static str],
    /// Bit `n`: a name of `n` bytes (`n` < 63); bit 63: a longer one.
    lens: u64,
    /// Bit `b`: a name starting with byte `b`.
    firsts: [u64; 4],
}

impl Names {
    pub(super) const fn new(list: &'static [&'static str]) -> Names {
        let mut lens = 0u64;
        let mut firsts = [0u64; 4];
        let mut i = 0;
        while i < list.len() {
            let name = list[i].as_bytes();
            lens |= 1 << Names::len_bit(name.len());
            if !name.is_empty() {
                firsts[(name[0] >> 6) as usize] |= 1 << (name[0] & 63);
            }
            i += 1;
        }
        Names { list, lens, firsts }
    }

    const fn len_bit(len: usize) -> u32 {
        if len < 63 {
            len as u32
        } else {
            63
        }
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        let first_known = match name.as_bytes().first() {
            Some(&b) => self
                .firsts
                .get(usize::from(b >> 6))
                .is_some_and(|bits| bits & (1 << (b & 63)) != 0),
            None => true,
        };
        first_known
            && self.lens & (1 << Names::len_bit(name.len())) != 0
            && self.list.contains(&name)
    }

    #[cfg(test)]
    pub(super) fn list(&self) -> &'static [&'static str] {
        self.list
    }

    /// Whether the set holds `name` in any ASCII case.
    pub(super) fn contains_ignore_ascii_case(&self, name: &str) -> bool {
        let first_known = match name.as_bytes().first() {
            Some(&b) => [b.to_ascii_lowercase(), b.to_ascii_uppercase()]
                .iter()
                .any(|&c| {
                    self.firsts
                        .get(usize::from(c >> 6))
                        .is_some_and(|bits| bits & (1 << (c & 63)) != 0)
                }),
            None => true,
        };
        first_known
            && self.lens & (1 << Names::len_bit(name.len())) != 0
            && self.list.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    const SOME: Names = Names::new(&[
        "curl",
        "nc",
        "",
        "a-very-long-program-name-well-over-sixty-three-bytes-long-xxxxxx",
    ]);

    #[test]
    fn names_hold_exactly_their_list() {
        for n in [
            "curl",
            "nc",
            "",
            "a-very-long-program-name-well-over-sixty-three-bytes-long-xxxxxx",
        ] {
            assert!(SOME.contains(n), "{n}");
        }
        for n in [
            "cur",
            "curls",
            "Curl",
            "n",
            "wc",
            "a-very-long-program-name-well-over-sixty-three-bytes-long-xxxxxy",
            "é",
        ] {
            assert!(!SOME.contains(n), "{n}");
        }
        assert!(SOME.contains_ignore_ascii_case("CuRL"));
        assert!(SOME.contains_ignore_ascii_case("NC"));
        assert!(!SOME.contains_ignore_ascii_case("CuRLs"));
        assert!(!SOME.contains_ignore_ascii_case("wc"));
    }
}
