//! Helpers for reading command-line arguments (options, operands, values).

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
