//! Program text the classifier cannot run but can read: interpreter code
//! (`python -c`, `node -e`, `perl -e`, `ruby -e`, `php -r`, awk programs,
//! heredocs fed to an interpreter) and sed scripts.
//!
//! Interpreter code is judged by the APIs it names, not by what a quoted string
//! happens to say: starting processes, deleting files, decoding data, opening
//! network connections, forking or killing ask; a quoted string is judged as a
//! shell command only when the code also starts a process (so
//! `print("rm -rf /")` is an ordinary print, while
//! `os.system("rm -rf /")` is forbidden like its shell twin).

/// What interpreter code may do, as far as its text shows.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Effects {
    /// Starts processes or evaluates code (`subprocess`, `os.system`,
    /// `child_process`, `system()`, backticks, `eval`, `exec`).
    pub runs: bool,
    /// Deletes or truncates files (`shutil.rmtree`, `os.remove`, `fs.rmSync`,
    /// `FileUtils.rm_rf`, `unlink`).
    pub deletes: bool,
    /// Decodes data (base64, hex, char codes) — often a hidden payload.
    pub decodes: bool,
    /// Opens network connections or fetches URLs.
    pub network: bool,
    /// Forks or kills processes.
    pub processes: bool,
    /// Refers to the home directory (`Path.home()`, `os.homedir()`, `$HOME`).
    pub home: bool,
    /// Writes files.
    pub writes: bool,
}

#[rustfmt::skip]
const RUNS: &[&str] = &[
    "subprocess", "os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "pty.spawn",
    "commands.getoutput", "system(", "system ", "exec(", "exec ", "execsync", "execfile",
    "spawnsync", "spawn(", "child_process", "popen", "shell_exec", "passthru", "proc_open",
    "pcntl_exec", "%x{", "%x(", "io.popen", "open3", "kernel.exec", "process.spawn", "eval(",
    "eval ", "__import__", "compile(", "runpy", "import os;os.exec", "`", "qx{", "qx(", "qx/",
    "deno.run", "deno.command", "bun.spawn", "bun.$", "$`", "$.spawn", "zx", "os.execute", "io.popen",
    "require('child", "require(\"child", "| getline", "|getline", "|&", "| \"", "|\"",
    "new function(", "vm.run", "runinnewcontext", "process.binding",
    "ctypes", "cdll", "dlopen", "ffi", "loadlibrary", "syscall",
];
#[rustfmt::skip]
const DELETES: &[&str] = &[
    "rmtree", "rm_rf", "rm_r", "rm_f", "remove_dir", "remove_entry", "remove_tree", "rmdir",
    "unlink", "os.remove", ".remove(", "removedirs", "rmsync", "fs.rm(", "fs.rm ",
    "fileutils.rm", "file.delete", "dir.delete", "fs::remove", "deltree", "truncate(",
    "truncatesync", "emptydir", "removesync", "deno.remove", "fs.rmdir", "del_tree", "shutil.move", "os.rename",
    "os.replace", "renamesync", "file.rename", "fileutils.mv", "rename(",
];
#[rustfmt::skip]
const DECODES: &[&str] = &[
    "b64decode", "base64", "atob(", "fromhex", "unhexlify", "a2b_", "codecs.decode",
    "decode('hex", "decode(\"hex", "fromcharcode", "chr(", "pack(", "unpack(", "decode_base64",
    "decode64", "strict_decode64", "hex2bin", "str_rot13", "rot13", "zlib.decompress",
    "gzinflate", "gzuncompress", "marshal.loads", "pickle.loads", "bytes.fromhex",
    "buffer.from(", "\\x", "\\u00",
];
#[rustfmt::skip]
const NETWORK: &[&str] = &[
    "socket", "urllib", "require('net')", "require(\"net\")", "require('dgram')",
    "require('http')", "require(\"http\")", "require('https')", "require(\"https\")",
    "require('tls')", ".connect(", "urlopen", "requests.", "http.client", "httplib", "fetch(", "http.get",
    "https.get", "http.request", "https.request", "net.connect", "net.createconnection",
    "xmlhttprequest", "net::http", "open-uri", "uri.open", "lwp::", "io::socket",
    "fsockopen", "curl_exec", "curl_init", "file_get_contents('http", "file_get_contents(\"http",
    "httpx", "aiohttp", "websocket", "ftplib", "smtplib", "paramiko", "telnetlib",
    "dns.resolve", "dgram", "tcpsocket", "udpsocket", "/inet/", "http://", "https://",
    "ftp://",
];
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "fork", "os.kill", "process.kill", "posix_kill", "killpg", "kill(", "kill ", "signal.sig",
    "setuid", "setgid", "os.setsid", "daemon(",
];
#[rustfmt::skip]
const HOME: &[&str] = &[
    "path.home", "expanduser", "os.homedir", "homedir()", "$env{home}", "env['home']",
    "env[\"home\"]", "environ['home']", "environ[\"home\"]", "environ.get('home'",
    "environ.get(\"home\"", "getenv('home')", "getenv(\"home\")", "dir.home", "~/", "\"~\"",
    "'~'", "$home", "env.home", "userprofile",
];
#[rustfmt::skip]
const WRITES: &[&str] = &[
    "open(", "write", "print >", "printf >", "print>", "file.write", "fs.write", "appendfile",
    "copyfile", "shutil.copy", "fileutils.cp", "file_put_contents", "fopen", "symlink",
    "chmod", "chown", "mkdir",
];

/// Bits of [`Effects`], one per needle list.
const RUNS_BIT: u8 = 1;
const DELETES_BIT: u8 = 2;
const DECODES_BIT: u8 = 4;
const NETWORK_BIT: u8 = 8;
const PROCESSES_BIT: u8 = 16;
const HOME_BIT: u8 = 32;
const WRITES_BIT: u8 = 64;
const ALL_BITS: u8 = 127;

const LISTS: [(&[&str], u8); 7] = [
    (RUNS, RUNS_BIT),
    (DELETES, DELETES_BIT),
    (DECODES, DECODES_BIT),
    (NETWORK, NETWORK_BIT),
    (PROCESSES, PROCESSES_BIT),
    (HOME, HOME_BIT),
    (WRITES, WRITES_BIT),
];

const NEEDLES: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < LISTS.len() {
        n += LISTS[i].0.len();
        i += 1;
    }
    n
};

/// Every needle with its list's bit, grouped by first byte (the needles
/// starting with byte `b` are at `FIRST[b]..FIRST[b+1]`), built at compile
/// time so that code is read in one pass instead of one search per needle.
const INDEX: ([(&str, u8); NEEDLES], [u16; 257]) = {
    let mut counts = [0u16; 257];
    let mut l = 0;
    while l < LISTS.len() {
        let mut k = 0;
        while k < LISTS[l].0.len() {
            let n = LISTS[l].0[k].as_bytes();
            assert!(!n.is_empty(), "an empty needle would match all code");
            counts[n[0] as usize + 1] += 1;
            k += 1;
        }
        l += 1;
    }
    let mut first = [0u16; 257];
    let mut b = 1;
    while b < 257 {
        first[b] = first[b - 1] + counts[b];
        b += 1;
    }
    let mut next = first;
    let mut out = [("", 0u8); NEEDLES];
    let mut l = 0;
    while l < LISTS.len() {
        let mut k = 0;
        while k < LISTS[l].0.len() {
            let n = LISTS[l].0[k];
            let at = n.as_bytes()[0] as usize;
            out[next[at] as usize] = (n, LISTS[l].1);
            next[at] += 1;
            k += 1;
        }
        l += 1;
    }
    (out, first)
};

/// Reads interpreter code for what it may do: a list's flag is set when one
/// of its needles occurs anywhere in the lower-cased code.
pub(super) fn effects(code: &str) -> Effects {
    let l = code.to_ascii_lowercase();
    let l = l.as_bytes();
    let (needles, first) = &INDEX;
    let mut found = 0u8;
    for i in 0..l.len() {
        let Some(&b) = l.get(i) else { break };
        let from = first.get(usize::from(b)).copied().unwrap_or(0);
        let to = first.get(usize::from(b) + 1).copied().unwrap_or(0);
        let rest = l.get(i..).unwrap_or(&[]);
        for (needle, bit) in needles
            .get(usize::from(from)..usize::from(to))
            .unwrap_or(&[])
        {
            if found & bit == 0 && rest.starts_with(needle.as_bytes()) {
                found |= bit;
            }
        }
        if found == ALL_BITS {
            break;
        }
    }
    Effects {
        runs: found & RUNS_BIT != 0,
        deletes: found & DELETES_BIT != 0,
        decodes: found & DECODES_BIT != 0,
        network: found & NETWORK_BIT != 0,
        processes: found & PROCESSES_BIT != 0,
        home: found & HOME_BIT != 0,
        writes: found & WRITES_BIT != 0,
    }
}

/// The plain reading of [`effects`] (one search per needle), kept to check
/// the one-pass index against.
#[cfg(test)]
fn effects_by_search(code: &str) -> Effects {
    let l = code.to_ascii_lowercase();
    let any = |list: &[&str]| list.iter().any(|k| l.contains(k));
    Effects {
        runs: any(RUNS),
        deletes: any(DELETES),
        decodes: any(DECODES),
        network: any(NETWORK),
        processes: any(PROCESSES),
        home: any(HOME),
        writes: any(WRITES),
    }
}

/// What a sed script does besides editing text.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SedEffect {
    /// `e CMD` runs CMD; `e` alone or the `s///e` flag runs text from the input.
    Runs(Option<String>),
    /// `w FILE`, `W FILE` or the `s///w FILE` flag writes FILE.
    Writes(String),
}

/// The commands of a sed script that run programs or write files.
pub(super) fn sed_effects(script: &str) -> Vec<SedEffect> {
    let mut out = Vec::new();
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let n = chars.len();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let rest_of_line = |i: usize| -> (String, usize) {
        let mut j = i;
        let mut s = String::new();
        while j < n && at(j) != '\n' {
            s.push(at(j));
            j += 1;
        }
        (s.trim().to_string(), j)
    };
    while i < n {
        // Skip separators and addresses.
        let c = at(i);
        if c.is_whitespace() || c == ';' || c == '}' || c == '{' || c == '!' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '$' || c == ',' || c == '~' || c == '+' {
            i += 1;
            continue;
        }
        if c == '/' || c == '\\' {
            // Regex address: /re/ or \cREc.
            let delim = if c == '\\' {
                i += 1;
                at(i)
            } else {
                '/'
            };
            i += 1;
            while i < n && at(i) != delim {
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            // Address flags I / M.
            while matches!(at(i), 'I' | 'M') {
                i += 1;
            }
            continue;
        }
        match c {
            '#' | ':' | 'b' | 't' | 'T' | 'a' | 'i' | 'c' | 'r' | 'R' | 'l' | 'L' | 'q' | 'Q'
            | 'v' | 'F' | 'z' => {
                // Commands whose argument runs to the end of the line (or `;`
                // for labels and branches).
                i += 1;
                let text = matches!(c, 'a' | 'i' | 'c');
                loop {
                    while i < n
                        && at(i) != '\n'
                        && (text || matches!(c, '#' | 'r' | 'R') || at(i) != ';')
                    {
                        i += 1;
                    }
                    // `a\`, `i\`, `c\`: text goes on while lines end in a backslash.
                    if text && i < n && i > 0 && at(i - 1) == '\\' {
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
            'e' => {
                let (cmd, j) = rest_of_line(i + 1);
                let cmd = cmd.trim_end_matches(';').trim().to_string();
                out.push(SedEffect::Runs((!cmd.is_empty()).then_some(cmd)));
                i = j;
            }
            'w' | 'W' => {
                let (file, j) = rest_of_line(i + 1);
                if !file.is_empty() {
                    out.push(SedEffect::Writes(file));
                }
                i = j;
            }
            's' | 'y' => {
                let delim = at(i + 1);
                if delim == '\0' || delim == '\n' || delim == '\\' {
                    i += 1;
                    continue;
                }
                i += 2;
                let mut parts = 0;
                while i < n && parts < 2 {
                    if at(i) == '\\' {
                        i += 2;
                        continue;
                    }
                    if at(i) == delim {
                        parts += 1;
                    }
                    i += 1;
                }
                if c == 's' {
                    // Flags up to a separator.
                    while i < n && !matches!(at(i), ';' | '\n' | '}') {
                        match at(i) {
                            'e' => out.push(SedEffect::Runs(None)),
                            'w' => {
                                let (file, j) = rest_of_line(i + 1);
                                if !file.is_empty() {
                                    out.push(SedEffect::Writes(file));
                                }
                                i = j;
                                break;
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sed_scripts() {
        assert_eq!(sed_effects("s/a/b/g"), vec![]);
        assert_eq!(
            sed_effects("1e rm -rf x"),
            vec![SedEffect::Runs(Some("rm -rf x".into()))]
        );
        assert_eq!(sed_effects("s/.*/echo hi/e"), vec![SedEffect::Runs(None)]);
        assert_eq!(
            sed_effects("s/a/b/w out.txt"),
            vec![SedEffect::Writes("out.txt".into())]
        );
        assert_eq!(
            sed_effects("/x/w ~/.bashrc"),
            vec![SedEffect::Writes("~/.bashrc".into())]
        );
        assert_eq!(sed_effects("s/e/E/g;s/w/W/"), vec![]);
        assert_eq!(sed_effects("/^#/d; s/foo/bar/"), vec![]);
        assert_eq!(sed_effects("$a\\\nexit 0"), vec![]);
    }

    #[test]
    fn one_pass_effects_match_the_plain_search() {
        let mut samples: Vec<String> = LISTS
            .iter()
            .flat_map(|(list, _)| list.iter())
            .flat_map(|n| {
                [
                    n.to_string(),
                    format!("x{n}y"),
                    n.to_ascii_uppercase(),
                    n.get(1..).unwrap_or("").to_string(),
                ]
            })
            .collect();
        samples.push(String::new());
        samples.push("import os; print(1)".into());
        samples.push("é ü `ls` ~/x OS.System('rm')".into());
        samples.push(LISTS.iter().flat_map(|(l, _)| l.iter()).copied().collect());
        for s in &samples {
            assert_eq!(effects(s), effects_by_search(s), "{s:?}");
        }
    }

    #[test]
    fn code_effects() {
        assert!(!effects("print('rm -rf /')").runs);
        assert!(effects("import shutil; shutil.rmtree('x')").deletes);
        assert!(effects("require('child_process').execSync('ls')").runs);
        assert!(effects("import base64; base64.b64decode('aGk=')").decodes);
        assert!(effects("import socket").network);
    }
}
