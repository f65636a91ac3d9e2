//! A bash parser made for judging commands, not for running them.
//!
//! **Owns** reading a command line into the syntax the classifier walks: lists,
//! pipelines, simple commands with their assignments, words and redirections,
//! every compound command (`( )`, `{ }`, `if`, `while`/`until`, `for`/`select`,
//! `case`, functions, `[[ ]]`, `(( ))`), here-documents, and inside words the
//! quotes, escapes, parameter expansions and command, arithmetic and process
//! substitutions (parsed, never just skipped, so a command hidden in any of them
//! is seen).
//!
//! **Must never** panic, recurse without bound, or take more than one forward pass
//! over the bytes (the only re-read is the arithmetic-versus-subshell choice of
//! `((`, bounded to one retry per construct, and nesting is capped at
//! [`MAX_NESTING`]). Where it cannot read a script the way bash would, it reports
//! an error — the caller then asks — rather than guessing.
//!
//! Why not tree-sitter-bash: it parses at about 7 MB/s here (a 10 KB command
//! took 1.37 ms before any judging), its scanner is unsafe on non-ASCII input, and
//! it reads some line breaks differently from bash. This parser follows bash's
//! own token rules, works on bytes (all shell syntax is ASCII, so UTF-8 passes
//! through untouched) and runs in tens of microseconds for 10 KB.

/// Deepest nesting of commands, substitutions and expansions that is read.
pub(super) const MAX_NESTING: usize = 64;

/// Most commands one script may hold (a `bash -c` string is a script of its
/// own). Past it the script is not read further and the caller asks. 120 KB
/// of ordinary commands (`cargo build && grep -rn TODO src | sort | uniq -c`,
/// four commands in 55 bytes) is 9,000 commands, about where the
/// classifier's work budget runs out anyway; 100 KB of `a;` is 34,000 and of
/// nested `$(echo $(echo x))` 12,000, and reading either took 5–10 ms before
/// any of it was judged.
pub(super) const MAX_COMMANDS: usize = 10_000;
/// The parse error for a script over [`MAX_COMMANDS`].
pub(super) const TOO_MANY_COMMANDS: &str = "too many commands to analyse";

/// Byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    /// The spanned text (empty if the span is not on character boundaries).
    pub(super) fn of(self, src: &str) -> &str {
        src.get(self.start..self.end).unwrap_or("")
    }
    fn of_bytes(self, b: &[u8]) -> &[u8] {
        b.get(self.start..self.end).unwrap_or_default()
    }
}

/// A parsed script. `error` is set when the script does not parse: `list` then
/// holds the complete top-level commands before the error.
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub list: List,
    pub heredocs: Vec<Heredoc>,
    pub error: Option<String>,
}

/// Commands separated by `;`, `&` or line breaks.
#[derive(Debug, Default)]
pub(super) struct List {
    pub items: Vec<AndOr>,
}

/// Pipelines joined by `&&` / `||`; `background` when ended by `&`.
#[derive(Debug)]
pub(super) struct AndOr {
    /// Most items are one pipeline, kept inline (no allocation).
    pub pipelines: smallvec::SmallVec<[Pipeline; 1]>,
    pub background: bool,
}

#[derive(Debug)]
pub(super) struct Pipeline {
    /// Most pipelines are one command, kept inline (no allocation).
    pub stages: smallvec::SmallVec<[Stmt; 1]>,
    pub span: Span,
}

/// One command with the redirections attached to it.
#[derive(Debug)]
pub(super) struct Stmt {
    pub cmd: Cmd,
    pub redirects: Vec<Redirect>,
    pub span: Span,
}

#[derive(Debug)]
pub(super) enum Cmd {
    Simple {
        assigns: Vec<Assign>,
        words: Vec<Word>,
    },
    Subshell(List),
    Group(List),
    /// `if`, `while`, `until`: conditions and bodies in source order.
    Compound(Vec<List>),
    /// `for`/`select`; the arithmetic `for ((;;))` has no variable and its
    /// expressions in `words`.
    For {
        var: Option<Span>,
        words: Vec<Word>,
        body: List,
    },
    Case {
        /// Boxed: a word is larger than any other variant's fields, and every
        /// command is moved a few times while it is parsed.
        subject: Box<Word>,
        arms: Vec<(Vec<Word>, List)>,
    },
    Function {
        name: Span,
        body: Box<Stmt>,
    },
    /// `[[ ... ]]` and `(( ... ))`: only their words matter here.
    Test(Vec<Word>),
}

impl Cmd {
    /// The lists a compound command runs (a function definition runs none).
    pub(super) fn lists(&self) -> Vec<&List> {
        match self {
            Cmd::Subshell(l) | Cmd::Group(l) | Cmd::For { body: l, .. } => vec![l],
            Cmd::Compound(lists) => lists.iter().collect(),
            Cmd::Case { arms, .. } => arms.iter().map(|(_, l)| l).collect(),
            Cmd::Simple { .. } | Cmd::Function { .. } | Cmd::Test(_) => Vec::new(),
        }
    }
}

/// `NAME=value`, `NAME+=value`, `NAME=(a b)`, `NAME[i]=value`.
#[derive(Debug)]
pub(super) struct Assign {
    pub name: Span,
    /// False for `NAME[i]=`: not a plain variable.
    pub plain: bool,
    pub append: bool,
    pub value: AssignValue,
}

#[derive(Debug)]
pub(super) enum AssignValue {
    Word(Word),
    Array(Vec<Word>),
}

#[derive(Debug)]
pub(super) struct Redirect {
    pub op: RedirOp,
    /// The target word; for a here-document, its delimiter.
    pub target: Word,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RedirOp {
    /// `<`
    Read,
    /// `>` and `>|`
    Write,
    /// `>>`
    Append,
    /// `<>`
    ReadWrite,
    /// `<&`
    DupIn,
    /// `>&` (a file when the target is not a descriptor)
    DupOut,
    /// `&>`
    AllOut,
    /// `&>>`
    AllAppend,
    /// `<<<`
    HereString,
    /// `<<` / `<<-`: index into [`Tree::heredocs`].
    Heredoc(usize),
}

impl RedirOp {
    /// True when the target is opened for writing.
    pub(super) fn writes(self) -> bool {
        matches!(
            self,
            RedirOp::Write
                | RedirOp::Append
                | RedirOp::ReadWrite
                | RedirOp::DupOut
                | RedirOp::AllOut
                | RedirOp::AllAppend
        )
    }
}

#[derive(Debug, Default)]
pub(super) struct Heredoc {
    /// The body, between the line after the command and the delimiter line.
    pub body: Span,
    /// Expansions in an unquoted body (a quoted delimiter keeps it literal).
    pub parts: Vec<Part>,
}

/// The parts of a word: most words are one part.
pub(super) type Parts = smallvec::SmallVec<[Part; 1]>;

/// One shell word: parts that touch.
#[derive(Debug, Default)]
pub(super) struct Word {
    pub parts: Parts,
    pub span: Span,
}

#[derive(Debug)]
pub(super) enum Part {
    /// Literal source text, backslash escapes not yet removed (unquoted rules, or
    /// double-quote rules inside [`Part::Double`] and heredoc bodies).
    Lit(Span),
    /// `'...'`: the text between the quotes.
    Single(Span),
    /// `$'...'`: the text between the quotes, escapes not yet decoded.
    AnsiC(Span),
    /// `"..."` and `$"..."`.
    Double(Vec<Part>),
    /// `$name`, `${name}`, `$1`, `$@`...: `plain`; `${...}` with operators is not
    /// plain and keeps the parts of its operands (for the substitutions in them).
    Param {
        name: Span,
        plain: bool,
        parts: Vec<Part>,
    },
    /// `$(...)`.
    Command(Box<List>),
    /// `` `...` ``: the script with the backquote escapes removed (it is parsed
    /// again by whoever needs it).
    Backquote(String),
    /// `$((...))`: its substitutions.
    Arith(Vec<Part>),
    /// `<(...)` / `>(...)`.
    Process(Box<List>),
}

/// Parses a script. Never fails: a script that does not parse has
/// [`Tree::error`] set.
pub(super) fn parse(src: &str) -> Tree {
    let mut p = Parser::new(src);
    let mut list = List::default();
    let error = p
        .program(&mut list.items, usize::MAX)
        .err()
        .or(p.deferred.take())
        .map(|e| e.describe(src));
    Tree {
        list,
        heredocs: p.heredocs,
        error,
    }
}

/// How many top-level commands [`Chunks`] reads at a time.
const CHUNK: usize = 8;

/// Reads a script a few top-level commands at a time, so that a long script's
/// syntax tree (tens of times larger than its text) is never held whole: the
/// caller walks each piece and drops it before the next is read.
pub(super) struct Chunks<'s> {
    p: Parser<'s>,
    src: &'s str,
    done: bool,
    error: Option<String>,
}

impl<'s> Chunks<'s> {
    pub(super) fn new(src: &'s str) -> Chunks<'s> {
        Chunks {
            p: Parser::new(src),
            src,
            done: false,
            error: None,
        }
    }

    /// Replaces `items` with the next complete top-level commands, whose
    /// here-documents ([`Chunks::take_heredocs`]) are read. False once the
    /// script has ended: `items` then holds its last commands (those before
    /// the error, if it does not parse).
    pub(super) fn next(&mut self, items: &mut Vec<AndOr>) -> bool {
        items.clear();
        if self.done {
            return false;
        }
        match self.p.program(items, CHUNK) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => self.error = Some(e.describe(self.src)),
        }
        self.done = true;
        false
    }

    /// The here-documents of the commands [`Chunks::next`] just gave, indexed
    /// by their [`RedirOp::Heredoc`] (each piece's start at 0).
    pub(super) fn take_heredocs(&mut self) -> Vec<Heredoc> {
        std::mem::take(&mut self.p.heredocs)
    }

    /// Why the script does not parse, once it has been read to its end.
    pub(super) fn error(&mut self) -> Option<String> {
        let deferred = self.p.deferred.take().map(|e| e.describe(self.src));
        self.error.take().or(deferred)
    }
}

/// Parses `src` the way bash expands a here-document body or an arithmetic
/// operand: only `$...` expansions and backquotes are syntax. The parts are in
/// `heredocs[0]`.
pub(super) fn parse_expansions(src: &str) -> Tree {
    let mut p = Parser::new(src);
    let body = Span::new(0, src.len());
    let parts = p.body_parts(body);
    Tree {
        list: List::default(),
        heredocs: vec![Heredoc { body, parts }],
        error: p.deferred.take().map(|e| e.describe(src)),
    }
}

/// Why a script does not parse.
#[derive(Debug)]
struct Fail {
    at: usize,
    what: &'static str,
}

impl Fail {
    fn describe(&self, src: &str) -> String {
        let near = crate::text::prefix(
            src.get(self.at..).unwrap_or(""),
            crate::text::Max::Chars(12),
        );
        if near.is_empty() {
            format!("{} at the end", self.what)
        } else {
            format!("{} near `{}`", self.what, near.trim_end())
        }
    }
}

type R<T> = Result<T, Fail>;

/// Pending here-document: its index and how to find the end of its body.
struct PendingDoc {
    index: usize,
    delim: Vec<u8>,
    strip_tabs: bool,
    expand: bool,
}

/// How a run of word parts ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An ordinary word: ends at a blank or a metacharacter.
    Word,
    /// The regular expression after `=~` in `[[ ]]`: ends at a blank outside
    /// parentheses.
    Regex,
    /// Inside `"..."`: ends at `"`.
    Double,
    /// The operand of `${name...}`: ends at `}`.
    Brace,
    /// A here-document body: ends at the parser's limit.
    Body,
}

/// Errors that `bash -n` does not report because bash only parses these parts
/// when it runs them (and then fails): here-document expansions, `[[ ]]`
/// contents, a `$((` that is not arithmetic, arithmetic `for` headers.
pub(super) const HEREDOC_FAIL: &str = "broken expansion in a here-document";
const COND_OPEN: &str = "`[[` is not closed";
const COND_TOKEN: &str = "`[[` has an unexpected token";
const DPAREN_FAIL: &str = "`$((` is neither arithmetic nor a command substitution";
const ARITH_FOR_PARENS: &str = "arithmetic `for` with unbalanced parentheses";
const ARITH_FOR_THREE: &str = "arithmetic `for` needs three expressions";
/// All of the above, for the tests that compare with `bash -n`.
#[cfg(test)]
pub(super) const CHECKED_WHEN_RUN: &[&str] = &[
    HEREDOC_FAIL,
    COND_OPEN,
    COND_TOKEN,
    DPAREN_FAIL,
    ARITH_FOR_PARENS,
    ARITH_FOR_THREE,
];

/// Builtins whose arguments may be assignments (`declare a=(x y)`).
const DECLARATIONS: &[&[u8]] = &[b"declare", b"typeset", b"local", b"export", b"readonly"];

/// Reserved words that begin a compound command.
const COMPOUND_STARTS: &[&[u8]] = &[
    b"{", b"if", b"while", b"until", b"for", b"select", b"case", b"[[",
];

const RESERVED_ENDS: &[&[u8]] = &[b"then", b"elif", b"else", b"fi", b"do", b"done", b"esac"];

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Ends an unquoted word.
fn is_meta(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

/// A table of the bytes in `chars`.
const fn byte_set(chars: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        set[chars[i] as usize] = true;
        i += 1;
    }
    set
}

/// Bytes that end or begin something inside an unquoted word.
static WORD_STOPS: [bool; 256] = byte_set(b" \t\n;&|()<>$`\\'\"");
/// ... inside double quotes.
static DOUBLE_STOPS: [bool; 256] = byte_set(b"\"$`\\");
/// ... in the operand of `${...}`.
static BRACE_STOPS: [bool; 256] = byte_set(b"}$`\\'\"");
/// ... in a here-document body.
static BODY_STOPS: [bool; 256] = byte_set(b"$`\\");

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

struct Parser<'s> {
    b: &'s [u8],
    pos: usize,
    /// End of what is being read (the source, or a here-document body).
    limit: usize,
    nesting: usize,
    heredocs: Vec<Heredoc>,
    pending: Vec<PendingDoc>,
    /// An error found where it cannot be returned (in a here-document body).
    deferred: Option<Fail>,
    /// How many `$( )` are open here.
    comsub: usize,
    /// Commands read so far (see [`MAX_COMMANDS`]).
    commands: usize,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Parser<'s> {
        Parser {
            b: src.as_bytes(),
            pos: 0,
            limit: src.len(),
            nesting: 0,
            heredocs: Vec::new(),
            pending: Vec::new(),
            deferred: None,
            comsub: 0,
            commands: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.at(0)
    }

    fn at(&self, k: usize) -> Option<u8> {
        let i = self.pos.checked_add(k)?;
        if i < self.limit {
            self.b.get(i).copied()
        } else {
            None
        }
    }

    fn looking_at(&self, s: &[u8]) -> bool {
        self.pos
            .checked_add(s.len())
            .filter(|&end| end <= self.limit)
            .and_then(|end| self.b.get(self.pos..end))
            == Some(s)
    }

    /// `s` as a whole word (followed by a blank, a metacharacter or the end).
    fn word_is(&self, s: &[u8]) -> bool {
        self.looking_at(s) && self.boundary(s.len())
    }

    /// Whether a word ends `k` bytes ahead: a blank, a metacharacter, a line
    /// continuation or the end.
    fn boundary(&self, k: usize) -> bool {
        match self.at(k) {
            None => true,
            Some(b'\\') => self.at(k + 1) == Some(b'\n'),
            Some(c) => is_meta(c),
        }
    }

    /// The unquoted run of bytes up to the next blank or metacharacter: what a
    /// reserved word would be.
    fn bare(&self) -> &[u8] {
        let rest = self.b.get(self.pos..self.limit).unwrap_or_default();
        let len = (0..rest.len())
            .find(|&k| self.boundary(k))
            .unwrap_or(rest.len());
        rest.get(..len).unwrap_or_default()
    }

    fn fail<T>(&self, what: &'static str) -> R<T> {
        Err(Fail { at: self.pos, what })
    }

    fn enter(&mut self) -> R<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.fail("nested too deeply");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    /// Skips blanks and escaped line breaks (not line breaks).
    fn blanks(&mut self) {
        loop {
            match self.peek() {
                Some(c) if is_blank(c) => self.pos += 1,
                Some(b'\\') if self.at(1) == Some(b'\n') => self.pos += 2,
                _ => return,
            }
        }
    }

    /// Skips a comment if one starts here (up to, not including, the line break).
    fn comment(&mut self) {
        if self.peek() == Some(b'#') {
            while self.peek().is_some_and(|c| c != b'\n') {
                self.pos += 1;
            }
        }
    }

    /// Skips blanks, comments and line breaks, reading here-document bodies
    /// after each line break.
    fn space(&mut self) {
        loop {
            self.blanks();
            self.comment();
            if self.peek() == Some(b'\n') {
                self.pos += 1;
                self.read_heredocs();
            } else {
                return;
            }
        }
    }

    /// The top level: complete commands are kept even when a later one fails.
    /// Pauses (true) once `items` holds `pause_at` commands whose
    /// here-documents are all read.
    fn program(&mut self, items: &mut Vec<AndOr>, pause_at: usize) -> R<bool> {
        if self.list_into(items, pause_at)? {
            return Ok(true);
        }
        self.space();
        if self.peek().is_some() {
            return self.fail("unexpected token");
        }
        self.read_heredocs();
        Ok(false)
    }

    /// True where a nested list ends: `)`, `}`, `;;`, a closing reserved word or
    /// the end.
    fn list_end(&self) -> bool {
        match self.peek() {
            None | Some(b')') => true,
            Some(b';') => matches!(self.at(1), Some(b';' | b'&')),
            Some(b'}') => self.word_is(b"}"),
            Some(b'd' | b'e' | b'f' | b't') => RESERVED_ENDS.contains(&self.bare()),
            _ => false,
        }
    }

    fn list(&mut self) -> R<List> {
        let mut items = Vec::new();
        self.list_into(&mut items, usize::MAX)?;
        Ok(List { items })
    }

    /// Reads commands into `items` up to where the list ends; those read before
    /// an error are kept (the top level keeps them). Returns true, with the
    /// list not ended, where `items` reached `pause_at` with no here-document
    /// left to read.
    fn list_into(&mut self, items: &mut Vec<AndOr>, pause_at: usize) -> R<bool> {
        loop {
            self.space();
            if items.len() >= pause_at && self.pending.is_empty() {
                return Ok(true);
            }
            if self.list_end() {
                break;
            }
            let mut item = self.and_or()?;
            self.blanks();
            self.comment();
            let more = match self.peek() {
                Some(b';') if !matches!(self.at(1), Some(b';' | b'&')) => {
                    self.pos += 1;
                    true
                }
                Some(b'&') => {
                    self.pos += 1;
                    item.background = true;
                    true
                }
                Some(b'\n') => true,
                _ => false,
            };
            items.push(item);
            if !more {
                break;
            }
        }
        Ok(false)
    }

    /// A list that must hold a command (bodies and conditions of compounds).
    fn list1(&mut self) -> R<List> {
        let list = self.list()?;
        if list.items.is_empty() {
            return self.fail("a command is missing");
        }
        Ok(list)
    }

    fn and_or(&mut self) -> R<AndOr> {
        let mut pipelines = smallvec::smallvec![self.pipeline()?];
        loop {
            self.blanks();
            if self.looking_at(b"&&") || self.looking_at(b"||") {
                self.pos += 2;
                self.space();
                pipelines.push(self.pipeline()?);
            } else {
                break;
            }
        }
        Ok(AndOr {
            pipelines,
            background: false,
        })
    }

    fn pipeline(&mut self) -> R<Pipeline> {
        self.blanks();
        let start = self.pos;
        while matches!(self.peek(), Some(b't' | b'!')) {
            if self.word_is(b"time") {
                self.pos += 4;
                self.blanks();
                if self.word_is(b"-p") {
                    self.pos += 2;
                }
            } else if self.word_is(b"!") {
                self.pos += 1;
            } else {
                break;
            }
            self.blanks();
        }
        // `time` and `!` alone are complete pipelines.
        let bare_prefix = self.pos > start
            && match self.peek() {
                None | Some(b'\n') => true,
                Some(b';') => !matches!(self.at(1), Some(b';' | b'&')),
                _ => false,
            };
        if bare_prefix {
            return Ok(Pipeline {
                stages: smallvec::SmallVec::new(),
                span: Span::new(start, self.pos),
            });
        }
        let mut stages: smallvec::SmallVec<[Stmt; 1]> = smallvec::smallvec![self.command()?];
        loop {
            self.blanks();
            if self.peek() == Some(b'|') && self.at(1) != Some(b'|') {
                self.pos += 1;
                if !stages.spilled() {
                    // Room for a few stages at once rather than growing by one.
                    stages.reserve_exact(3);
                }
                if self.peek() == Some(b'&') {
                    self.pos += 1;
                }
                self.space();
                stages.push(self.command()?);
            } else {
                break;
            }
        }
        let end = stages.last().map_or(self.pos, |s| s.span.end);
        Ok(Pipeline {
            stages,
            span: Span::new(start, end),
        })
    }

    fn command(&mut self) -> R<Stmt> {
        self.commands += 1;
        if self.commands > MAX_COMMANDS {
            return self.fail(TOO_MANY_COMMANDS);
        }
        self.enter()?;
        let stmt = self.command_inner();
        self.leave();
        stmt
    }

    fn command_inner(&mut self) -> R<Stmt> {
        self.blanks();
        let start = self.pos;
        let cmd = match self.peek() {
            None => return self.fail("a command is missing"),
            Some(b'(') if self.at(1) == Some(b'(') => match self.arith_command()? {
                Some(words) => Cmd::Test(words),
                None => self.subshell()?,
            },
            Some(b'(') => self.subshell()?,
            Some(b')' | b';' | b'&' | b'|') => return self.fail("unexpected token"),
            Some(_) => match self.bare() {
                b"!" => return self.fail("unexpected `!`"),
                b"{" => {
                    self.pos += 1;
                    let list = self.list1()?;
                    self.expect_word(b"}", "`{` is not closed")?;
                    Cmd::Group(list)
                }
                b"if" => self.if_clause()?,
                b"while" | b"until" => {
                    self.pos += 5;
                    let cond = self.list1()?;
                    let body = self.do_group()?;
                    Cmd::Compound(vec![cond, body])
                }
                b"for" => {
                    self.pos += 3;
                    self.for_clause()?
                }
                b"select" => {
                    self.pos += 6;
                    self.for_clause()?
                }
                b"case" => self.case_clause()?,
                b"function" => {
                    self.pos += 8;
                    self.function_keyword()?
                }
                b"[[" => {
                    self.pos += 2;
                    Cmd::Test(self.cond()?)
                }
                b"coproc" => {
                    self.pos += 6;
                    return self.coproc();
                }
                w if w == b"}" || w == b"in" || RESERVED_ENDS.contains(&w) => {
                    return self.fail("unexpected reserved word");
                }
                _ => return self.simple(start),
            },
        };
        let mut end = self.pos;
        let mut redirects = Vec::new();
        loop {
            self.blanks();
            match self.redirect()? {
                Some(r) => {
                    end = r.span.end;
                    redirects.push(r);
                }
                None => break,
            }
        }
        Ok(Stmt {
            cmd,
            redirects,
            span: Span::new(start, end),
        })
    }

    /// After `coproc`: `[NAME] compound-command` or `simple-command`; the command
    /// runs (in the background), so it is returned as it is.
    fn coproc(&mut self) -> R<Stmt> {
        self.blanks();
        // A NAME (any word) is only taken before a compound command.
        let (save, docs) = (self.pos, self.pending.len());
        let named = self.token_word().is_ok_and(|w| !w.parts.is_empty());
        self.blanks();
        let compound = self.peek() == Some(b'(') || COMPOUND_STARTS.contains(&self.bare());
        if !(named && compound) {
            self.pos = save;
            self.pending.truncate(docs);
        }
        if self.bare() == b"coproc" {
            return self.fail("`coproc` inside `coproc`");
        }
        self.command()
    }

    fn expect_word(&mut self, w: &[u8], what: &'static str) -> R<()> {
        self.space();
        if self.word_is(w) {
            self.pos += w.len();
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn subshell(&mut self) -> R<Cmd> {
        self.pos += 1;
        let list = self.list1()?;
        self.space();
        if self.peek() != Some(b')') {
            return self.fail("`(` is not closed");
        }
        self.pos += 1;
        Ok(Cmd::Subshell(list))
    }

    fn if_clause(&mut self) -> R<Cmd> {
        self.pos += 2;
        let mut lists = vec![self.list1()?];
        self.expect_word(b"then", "`if` without `then`")?;
        lists.push(self.list1()?);
        loop {
            self.space();
            if self.word_is(b"elif") {
                self.pos += 4;
                lists.push(self.list1()?);
                self.expect_word(b"then", "`elif` without `then`")?;
                lists.push(self.list1()?);
            } else if self.word_is(b"else") {
                self.pos += 4;
                lists.push(self.list1()?);
                self.expect_word(b"fi", "`if` is not closed")?;
                break;
            } else {
                self.expect_word(b"fi", "`if` is not closed")?;
                break;
            }
        }
        Ok(Cmd::Compound(lists))
    }

    fn do_group(&mut self) -> R<List> {
        self.expect_word(b"do", "loop without `do`")?;
        let body = self.list1()?;
        self.expect_word(b"done", "loop is not closed")?;
        Ok(body)
    }

    /// After `for` / `select`.
    fn for_clause(&mut self) -> R<Cmd> {
        self.blanks();
        if self.looking_at(b"((") {
            let Some(words) = self.arith_command()? else {
                return self.fail(ARITH_FOR_PARENS);
            };
            let semicolons: usize = words
                .iter()
                .flat_map(|w| w.parts.iter())
                .map(|p| match p {
                    Part::Lit(s) => s.of_bytes(self.b).iter().filter(|&&c| c == b';').count(),
                    _ => 0,
                })
                .sum();
            if semicolons != 2 {
                return self.fail(ARITH_FOR_THREE);
            }
            self.blanks();
            if self.peek() == Some(b';') {
                self.pos += 1;
            }
            self.space();
            let body = if self.word_is(b"{") {
                self.pos += 1;
                let body = self.list1()?;
                self.expect_word(b"}", "`{` is not closed")?;
                body
            } else {
                self.do_group()?
            };
            return Ok(Cmd::For {
                var: None,
                words,
                body,
            });
        }
        // Bash checks the name only when the loop runs.
        let var = self.token_word()?.span;
        if var.start == var.end {
            return self.fail("`for` needs a variable name");
        }
        let mut words = Vec::new();
        self.blanks();
        self.comment();
        if self.peek() == Some(b';') {
            // `for x; do`: no `in`.
            self.pos += 1;
            let body = self.do_group()?;
            return Ok(Cmd::For {
                var: Some(var),
                words,
                body,
            });
        }
        self.space();
        if self.word_is(b"in") {
            self.pos += 2;
            loop {
                self.blanks();
                self.comment();
                match self.peek() {
                    Some(b';') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\n') | None => break,
                    Some(c) if is_meta(c) => return self.fail("unexpected token in `for`"),
                    Some(_) => words.push(self.word(Mode::Word)?),
                }
            }
        }
        let body = self.do_group()?;
        Ok(Cmd::For {
            var: Some(var),
            words,
            body,
        })
    }

    fn case_clause(&mut self) -> R<Cmd> {
        self.pos += 4;
        self.blanks();
        let subject = self.token_word()?;
        if subject.parts.is_empty() {
            return self.fail("`case` without a word");
        }
        self.expect_word(b"in", "`case` without `in`")?;
        let mut arms = Vec::new();
        loop {
            self.space();
            if self.word_is(b"esac") {
                self.pos += 4;
                break;
            }
            if self.peek() == Some(b'(') {
                self.pos += 1;
            }
            let mut patterns = Vec::new();
            loop {
                self.blanks();
                let w = self.token_word()?;
                if w.parts.is_empty() {
                    return self.fail("bad `case` pattern");
                }
                patterns.push(w);
                self.blanks();
                match self.peek() {
                    Some(b'|') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.fail("bad `case` pattern"),
                }
            }
            let body = self.list()?;
            arms.push((patterns, body));
            self.space();
            if self.looking_at(b";;&") {
                self.pos += 3;
            } else if self.looking_at(b";;") || self.looking_at(b";&") {
                self.pos += 2;
            } else if self.word_is(b"esac") {
                self.pos += 4;
                break;
            } else {
                return self.fail("`case` is not closed");
            }
        }
        Ok(Cmd::Case {
            subject: Box::new(subject),
            arms,
        })
    }

    /// After `function`: a name, optional `()`, a compound body.
    fn function_keyword(&mut self) -> R<Cmd> {
        self.blanks();
        let name = self.token_word()?.span;
        if name.start == name.end {
            return self.fail("`function` without a name");
        }
        self.blanks();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            self.blanks();
            if self.peek() != Some(b')') {
                return self.fail("bad function definition");
            }
            self.pos += 1;
        }
        self.function_body(name)
    }

    fn function_body(&mut self, name: Span) -> R<Cmd> {
        self.space();
        let body = self.command()?;
        match body.cmd {
            Cmd::Simple { .. } | Cmd::Function { .. } => {
                self.fail("a function body must be a compound command")
            }
            _ => Ok(Cmd::Function {
                name,
                body: Box::new(body),
            }),
        }
    }

    /// `((...))` as a command; `None` (position restored) when it is a nested
    /// subshell instead.
    fn arith_command(&mut self) -> R<Option<Vec<Word>>> {
        let start = self.pos;
        let docs = self.pending.len();
        self.pos += 2;
        match self.arith_body()? {
            Some(parts) => Ok(Some(vec![Word {
                parts: Parts::from_vec(parts),
                span: Span::new(start, self.pos),
            }])),
            None => {
                self.pos = start;
                self.pending.truncate(docs);
                Ok(None)
            }
        }
    }

    /// After `((` / `$((`: reads to the matching `))`. `None` when the
    /// parentheses close singly first (then it was a subshell).
    fn arith_body(&mut self) -> R<Option<Vec<Part>>> {
        let mut parts = Vec::new();
        let mut depth = 0usize;
        let mut lit = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return self.fail("`((` is not closed");
            };
            match c {
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' if depth == 0 => {
                    if self.at(1) == Some(b')') {
                        self.push_lit(&mut parts, lit);
                        self.pos += 2;
                        return Ok(Some(parts));
                    }
                    return Ok(None);
                }
                b')' => {
                    depth -= 1;
                    self.pos += 1;
                }
                b'$' | b'`' | b'\'' | b'"' | b'\\' => {
                    self.push_lit(&mut parts, lit);
                    self.special_part(&mut parts, Mode::Brace)?;
                    lit = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Literal text from `from` to here, if any.
    fn push_lit<P: PartSink>(&self, parts: &mut P, from: usize) {
        if self.pos > from {
            parts.push(Part::Lit(Span::new(from, self.pos)));
        }
    }

    /// `[[ ... ]]` after the `[[`.
    fn cond(&mut self) -> R<Vec<Word>> {
        let mut words = Vec::new();
        loop {
            self.space();
            if self.word_is(b"]]") {
                self.pos += 2;
                return Ok(words);
            }
            match self.peek() {
                None => return self.fail(COND_OPEN),
                Some(b'&') if self.at(1) == Some(b'&') => self.pos += 2,
                Some(b'|') if self.at(1) == Some(b'|') => self.pos += 2,
                // Bash reads these and fails when the test runs.
                Some(b'&' | b'|') => self.pos += 1,
                Some(b'(' | b')' | b'<' | b'>') => self.pos += 1,
                Some(b'!') if self.at(1).is_none_or(is_meta) => self.pos += 1,
                Some(c) if is_meta(c) => return self.fail(COND_TOKEN),
                Some(_) => {
                    let w = self.word(Mode::Word)?;
                    let regex = w.span.of_bytes(self.b) == b"=~";
                    words.push(w);
                    if regex {
                        self.blanks();
                        words.push(self.word(Mode::Regex)?);
                    }
                }
            }
        }
    }

    /// A simple command, or a function definition `name () body`.
    fn simple(&mut self, start: usize) -> R<Stmt> {
        let mut assigns = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let mut redirects = Vec::new();
        let mut end = start;
        loop {
            self.blanks();
            match self.peek() {
                None | Some(b'\n' | b';' | b'|' | b')') => break,
                Some(b'&') if self.at(1) != Some(b'>') => break,
                Some(b'(') => {
                    if let ([name], true, true) =
                        (words.as_slice(), assigns.is_empty(), redirects.is_empty())
                    {
                        let name = name.span;
                        self.pos += 1;
                        self.blanks();
                        if self.peek() != Some(b')') {
                            return self.fail("bad function definition");
                        }
                        self.pos += 1;
                        let cmd = self.function_body(name)?;
                        let end = self.pos;
                        return Ok(Stmt {
                            cmd,
                            redirects: Vec::new(),
                            span: Span::new(start, end),
                        });
                    }
                    return self.fail("unexpected `(`");
                }
                Some(b'#') => {
                    self.comment();
                    break;
                }
                Some(_) => {
                    if let Some(r) = self.redirect()? {
                        end = r.span.end;
                        redirects.push(r);
                        continue;
                    }
                    // `declare a=(x y)`: declaration builtins take assignments as
                    // arguments.
                    let assigning = match words.first() {
                        None => true,
                        Some(w) => {
                            redirects.is_empty() && DECLARATIONS.contains(&w.span.of_bytes(self.b))
                        }
                    };
                    if assigning {
                        if let Some(a) = self.assignment(words.is_empty())? {
                            end = self.pos;
                            assigns.push(a);
                            continue;
                        }
                    }
                    let w = self.word(Mode::Word)?;
                    if w.parts.is_empty() {
                        return self.fail("unexpected token");
                    }
                    end = w.span.end;
                    words.push(w);
                }
            }
        }
        if assigns.is_empty() && words.is_empty() && redirects.is_empty() {
            return self.fail("a command is missing");
        }
        Ok(Stmt {
            cmd: Cmd::Simple { assigns, words },
            redirects,
            span: Span::new(start, end),
        })
    }

    /// `NAME=`, `NAME+=`, `NAME[...]=` followed by a value or `(array)`.
    /// `command`: at the start of a command, where `name[` must be closed.
    fn assignment(&mut self, command: bool) -> R<Option<Assign>> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return Ok(None);
        }
        let mut i = self.pos;
        while self
            .b
            .get(i)
            .copied()
            .filter(|_| i < self.limit)
            .is_some_and(is_name)
        {
            i += 1;
        }
        let name = Span::new(start, i);
        let mut plain = true;
        if self.b.get(i) == Some(&b'[') && i < self.limit {
            // Subscript: up to the matching `]` on this line.
            let mut depth = 0usize;
            loop {
                match self.b.get(i).filter(|_| i < self.limit) {
                    Some(b'[') => depth += 1,
                    Some(b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    None if command => return self.fail("`[` is not closed"),
                    // Quotes in a subscript: read as a word (as bash does).
                    Some(b'"' | b'\'' | b'`' | b'\\') | None => return Ok(None),
                    Some(b'\n') if !command => return Ok(None),
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            plain = false;
        }
        let append = self.b.get(i) == Some(&b'+');
        let eq = if append { i + 1 } else { i };
        if self.b.get(eq) != Some(&b'=') || eq >= self.limit {
            return Ok(None);
        }
        self.pos = eq + 1;
        let value = if self.peek() == Some(b'(') {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                self.space();
                match self.peek() {
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    None => return self.fail("array is not closed"),
                    Some(c) if is_meta(c) => return self.fail("unexpected token in array"),
                    Some(_) => items.push(self.word(Mode::Word)?),
                }
            }
            AssignValue::Array(items)
        } else {
            AssignValue::Word(self.word(Mode::Word)?)
        };
        Ok(Some(Assign {
            name,
            plain,
            append,
            value,
        }))
    }

    /// A redirection starting here, if there is one.
    fn redirect(&mut self) -> R<Option<Redirect>> {
        // Every redirection starts with a digit, `<`, `>` or `&`.
        if !matches!(self.peek(), Some(b'0'..=b'9' | b'<' | b'>' | b'&')) {
            return Ok(None);
        }
        let start = self.pos;
        let mut i = 0;
        while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i > 0 && !matches!(self.at(i), Some(b'<' | b'>')) {
            return Ok(None);
        }
        let fd = i > 0;
        let rest = |k: usize| self.at(i + k);
        let strip_tabs = (rest(0), rest(1), rest(2)) == (Some(b'<'), Some(b'<'), Some(b'-'));
        // A here-document's index is given once its delimiter is read (the
        // delimiter word may hold here-documents of its own).
        let (op, len) = match (rest(0), rest(1), rest(2)) {
            (Some(b'<'), Some(b'<'), Some(b'<')) => (RedirOp::HereString, 3),
            (Some(b'<'), Some(b'<'), Some(b'-')) => (RedirOp::Heredoc(0), 3),
            (Some(b'<'), Some(b'<'), _) => (RedirOp::Heredoc(0), 2),
            (Some(b'<'), Some(b'>'), _) => (RedirOp::ReadWrite, 2),
            (Some(b'<'), Some(b'&'), _) => (RedirOp::DupIn, 2),
            (Some(b'<'), Some(b'('), _) => return Ok(None),
            (Some(b'<'), _, _) => (RedirOp::Read, 1),
            (Some(b'>'), Some(b'>'), _) => (RedirOp::Append, 2),
            (Some(b'>'), Some(b'&'), _) => (RedirOp::DupOut, 2),
            (Some(b'>'), Some(b'|'), _) => (RedirOp::Write, 2),
            (Some(b'>'), Some(b'('), _) => return Ok(None),
            (Some(b'>'), _, _) => (RedirOp::Write, 1),
            (Some(b'&'), Some(b'>'), Some(b'>')) if !fd => (RedirOp::AllAppend, 3),
            (Some(b'&'), Some(b'>'), _) if !fd => (RedirOp::AllOut, 2),
            _ => return Ok(None),
        };
        self.pos += i + len;
        self.blanks();
        let target = self.token_word()?;
        if target.parts.is_empty() {
            return self.fail("redirection without a target");
        }
        // `>2>&1`: bash reads `2>` as the next redirection, leaving this one
        // without a target.
        let digits = target.span.of_bytes(self.b);
        if !matches!(op, RedirOp::DupIn | RedirOp::DupOut)
            && !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && matches!(self.peek(), Some(b'<' | b'>'))
        {
            return self.fail("redirection without a target");
        }
        let op = match op {
            RedirOp::Heredoc(_) => {
                let index = self.heredocs.len();
                self.heredocs.push(Heredoc::default());
                let (delim, quoted) = delimiter(self.b, &target);
                self.pending.push(PendingDoc {
                    index,
                    delim,
                    strip_tabs,
                    expand: !quoted,
                });
                RedirOp::Heredoc(index)
            }
            op => op,
        };
        Ok(Some(Redirect {
            op,
            span: Span::new(start, target.span.end),
            target,
        }))
    }

    /// Reads the bodies of the here-documents begun on the line just ended.
    fn read_heredocs(&mut self) {
        for doc in std::mem::take(&mut self.pending) {
            let start = self.pos;
            let mut body_end = self.limit;
            while self.pos < self.limit {
                let line_end = self
                    .b
                    .get(self.pos..self.limit)
                    .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
                    .map_or(self.limit, |k| self.pos + k);
                let mut line = self.b.get(self.pos..line_end).unwrap_or_default();
                if doc.strip_tabs {
                    while let Some((b'\t', rest)) = line.split_first() {
                        line = rest;
                    }
                }
                if line == doc.delim.as_slice() {
                    body_end = self.pos;
                    self.pos = (line_end + 1).min(self.limit);
                    break;
                }
                // Inside `$( )` bash also ends the body at the delimiter followed
                // by the closing parenthesis (`E)`), which is then read.
                let closes = self.comsub > 0
                    && line
                        .strip_prefix(doc.delim.as_slice())
                        .is_some_and(|rest| rest.iter().find(|&&c| !is_blank(c)) == Some(&b')'));
                if closes {
                    body_end = self.pos;
                    let tabs = line_end - self.pos - line.len();
                    self.pos += tabs + doc.delim.len();
                    break;
                }
                self.pos = (line_end + 1).min(self.limit);
            }
            if body_end == self.limit {
                self.pos = self.limit;
            }
            let body = Span::new(start, body_end.min(self.limit));
            let parts = if doc.expand {
                self.body_parts(body)
            } else {
                Vec::new()
            };
            if let Some(h) = self.heredocs.get_mut(doc.index) {
                *h = Heredoc { body, parts };
            }
        }
    }

    /// Expansions in an unquoted here-document body (bash reads them when the
    /// command runs; one that does not parse fails the script).
    fn body_parts(&mut self, body: Span) -> Vec<Part> {
        let (pos, limit, pending) = (self.pos, self.limit, std::mem::take(&mut self.pending));
        self.pos = body.start;
        self.limit = body.end;
        let mut parts = Vec::new();
        if let Err(e) = self.parts_into(&mut parts, Mode::Body) {
            self.deferred.get_or_insert(Fail {
                at: e.at,
                what: HEREDOC_FAIL,
            });
        }
        self.pos = pos;
        self.limit = limit;
        self.pending = pending;
        parts
    }

    /// A word where a token starts: empty at `#` (a comment starts there).
    fn token_word(&mut self) -> R<Word> {
        if self.peek() == Some(b'#') {
            return Ok(Word {
                parts: Parts::new(),
                span: Span::new(self.pos, self.pos),
            });
        }
        self.word(Mode::Word)
    }

    /// One word in `mode` (empty when the next character ends a word).
    fn word(&mut self, mode: Mode) -> R<Word> {
        let start = self.pos;
        let mut parts = Parts::new();
        self.parts_into(&mut parts, mode)?;
        Ok(Word {
            parts,
            span: Span::new(start, self.pos),
        })
    }

    /// Word parts up to where `mode` ends (the end itself is not consumed).
    fn parts_into<P: PartSink>(&mut self, parts: &mut P, mode: Mode) -> R<()> {
        let mut lit = self.pos;
        let mut parens = 0usize;
        loop {
            self.skip_plain(mode);
            let Some(c) = self.peek() else {
                return match mode {
                    Mode::Double => self.fail("unterminated double quote"),
                    Mode::Brace => self.fail("`${` is not closed"),
                    _ => {
                        self.push_lit(parts, lit);
                        Ok(())
                    }
                };
            };
            let ends = match mode {
                Mode::Word => is_meta(c) && !(matches!(c, b'<' | b'>') && self.at(1) == Some(b'(')),
                Mode::Regex => {
                    let ends = parens == 0 && (is_blank(c) || c == b'\n' || c == b')');
                    match c {
                        b'(' => parens += 1,
                        b')' => parens = parens.saturating_sub(1),
                        _ => {}
                    }
                    ends
                }
                Mode::Double => c == b'"',
                Mode::Brace => c == b'}',
                Mode::Body => false,
            };
            if ends {
                self.push_lit(parts, lit);
                return Ok(());
            }
            let special = match c {
                b'$' | b'`' | b'\\' => true,
                b'\'' | b'"' => !matches!(mode, Mode::Double | Mode::Body),
                b'<' | b'>' => mode == Mode::Word,
                _ => false,
            };
            if special {
                self.push_lit(parts, lit);
                let in_quotes = matches!(mode, Mode::Double | Mode::Body);
                self.special_part(parts, if in_quotes { Mode::Double } else { mode })?;
                lit = self.pos;
            } else {
                self.pos += 1;
            }
        }
    }

    /// Skips bytes that neither end nor start anything in `mode`.
    fn skip_plain(&mut self, mode: Mode) {
        let stops = match mode {
            Mode::Word => &WORD_STOPS,
            Mode::Double => &DOUBLE_STOPS,
            Mode::Brace => &BRACE_STOPS,
            Mode::Body => &BODY_STOPS,
            Mode::Regex => return,
        };
        let rest = self.b.get(self.pos..self.limit).unwrap_or_default();
        self.pos += rest
            .iter()
            .position(|&c| stops[usize::from(c)])
            .unwrap_or(rest.len());
    }

    /// A part starting with `$`, `` ` ``, `\`, a quote, or `<(`/`>(`.
    /// `mode` is [`Mode::Double`] inside double quotes.
    fn special_part<P: PartSink>(&mut self, parts: &mut P, mode: Mode) -> R<()> {
        let start = self.pos;
        let quoted = mode == Mode::Double;
        match self.peek() {
            Some(b'\\') => {
                // The escape stays in the literal text; only its extent matters.
                self.pos = (self.pos + 2).min(self.limit);
                // Skip a whole UTF-8 character after the backslash.
                while self.peek().is_some_and(|c| (c & 0xC0) == 0x80) {
                    self.pos += 1;
                }
                parts.push(Part::Lit(Span::new(start, self.pos)));
            }
            Some(b'\'') => {
                self.pos += 1;
                let from = self.pos;
                while self.peek().is_some_and(|c| c != b'\'') {
                    self.pos += 1;
                }
                if self.peek().is_none() {
                    return self.fail("unterminated single quote");
                }
                parts.push(Part::Single(Span::new(from, self.pos)));
                self.pos += 1;
            }
            Some(b'"') => {
                self.pos += 1;
                parts.push(self.double()?);
            }
            Some(b'`') => parts.push(self.backquote(quoted)?),
            Some(b'<' | b'>') => {
                self.pos += 2;
                self.enter()?;
                let list = self.list()?;
                self.leave();
                self.space();
                if self.peek() != Some(b')') {
                    return self.fail("process substitution is not closed");
                }
                self.pos += 1;
                parts.push(Part::Process(Box::new(list)));
            }
            Some(b'$') => self.dollar(parts, quoted)?,
            _ => self.pos += 1,
        }
        Ok(())
    }

    /// After an opening `"`: the parts, and the closing quote.
    fn double(&mut self) -> R<Part> {
        self.enter()?;
        let mut inner = Vec::new();
        self.parts_into(&mut inner, Mode::Double)?;
        self.leave();
        self.pos += 1;
        Ok(Part::Double(inner))
    }

    fn backquote(&mut self, quoted: bool) -> R<Part> {
        self.pos += 1;
        let mut text = Vec::new();
        loop {
            match self.peek() {
                None => return self.fail("unterminated backquote"),
                Some(b'`') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let next = self.at(1);
                    let escapes =
                        matches!(next, Some(b'$' | b'`' | b'\\')) || (quoted && next == Some(b'"'));
                    if !escapes {
                        text.push(b'\\');
                    }
                    if let Some(n) = next {
                        text.push(n);
                    }
                    self.pos = (self.pos + 2).min(self.limit);
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(Part::Backquote(String::from_utf8_lossy(&text).into_owned()))
    }

    /// A part starting with `$`.
    fn dollar<P: PartSink>(&mut self, parts: &mut P, quoted: bool) -> R<()> {
        let start = self.pos;
        match self.at(1) {
            Some(b'(') if self.at(2) == Some(b'(') => {
                let docs = self.pending.len();
                self.pos += 3;
                self.enter()?;
                let arith = self.arith_body()?;
                self.leave();
                match arith {
                    Some(inner) => parts.push(Part::Arith(inner)),
                    None => {
                        self.pos = start;
                        self.pending.truncate(docs);
                        let sub = self.command_sub().map_err(|e| Fail {
                            at: e.at,
                            what: DPAREN_FAIL,
                        })?;
                        parts.push(sub);
                    }
                }
            }
            Some(b'(') => parts.push(self.command_sub()?),
            Some(b'{') => {
                self.pos += 2;
                let name_start = self.pos;
                let mut name_end = name_start;
                match self.peek() {
                    Some(c) if is_name_start(c) => {
                        while self.peek().is_some_and(is_name) {
                            self.pos += 1;
                        }
                        name_end = self.pos;
                    }
                    Some(c) if c.is_ascii_digit() || b"@*#?-$!".contains(&c) => {
                        self.pos += 1;
                        name_end = self.pos;
                    }
                    _ => {}
                }
                let name = Span::new(name_start, name_end);
                if name_end > name_start && self.peek() == Some(b'}') {
                    self.pos += 1;
                    parts.push(Part::Param {
                        name,
                        plain: true,
                        parts: Vec::new(),
                    });
                } else {
                    self.enter()?;
                    let mut inner = Vec::new();
                    self.parts_into(&mut inner, Mode::Brace)?;
                    self.leave();
                    self.pos += 1;
                    parts.push(Part::Param {
                        name,
                        plain: false,
                        parts: inner,
                    });
                }
            }
            Some(b'\'') if !quoted => {
                self.pos += 2;
                let from = self.pos;
                loop {
                    match self.peek() {
                        None => return self.fail("unterminated `$'`"),
                        Some(b'\\') => self.pos = (self.pos + 2).min(self.limit),
                        Some(b'\'') => break,
                        Some(_) => self.pos += 1,
                    }
                }
                parts.push(Part::AnsiC(Span::new(from, self.pos)));
                self.pos += 1;
            }
            Some(b'"') if !quoted => {
                self.pos += 2;
                parts.push(self.double()?);
            }
            Some(c) if is_name_start(c) => {
                self.pos += 1;
                let from = self.pos;
                while self.peek().is_some_and(is_name) {
                    self.pos += 1;
                }
                parts.push(Part::Param {
                    name: Span::new(from, self.pos),
                    plain: true,
                    parts: Vec::new(),
                });
            }
            Some(c) if c.is_ascii_digit() || b"@*#?-$!".contains(&c) => {
                self.pos += 2;
                parts.push(Part::Param {
                    name: Span::new(start + 1, self.pos),
                    plain: true,
                    parts: Vec::new(),
                });
            }
            _ => {
                self.pos += 1;
                parts.push(Part::Lit(Span::new(start, self.pos)));
            }
        }
        Ok(())
    }

    /// `$( ... )` starting at the `$`.
    fn command_sub(&mut self) -> R<Part> {
        self.pos += 2;
        self.enter()?;
        self.comsub += 1;
        let list = self.list();
        self.comsub -= 1;
        let list = list?;
        self.leave();
        self.space();
        if self.peek() != Some(b')') {
            return self.fail("`$(` is not closed");
        }
        self.pos += 1;
        Ok(Part::Command(Box::new(list)))
    }
}

/// Where parsed parts go: a word's inline list or a nested part's vector.
trait PartSink {
    fn push(&mut self, p: Part);
}

impl PartSink for Vec<Part> {
    fn push(&mut self, p: Part) {
        Vec::push(self, p);
    }
}

impl PartSink for Parts {
    fn push(&mut self, p: Part) {
        smallvec::SmallVec::push(self, p);
    }
}

/// A here-document delimiter's text with quotes removed, and whether any part of
/// it was quoted (which keeps the body literal).
fn delimiter(b: &[u8], w: &Word) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut quoted = false;
    for p in &w.parts {
        match p {
            Part::Lit(s) => {
                let t = s.of_bytes(b);
                if let Some(rest) = t.strip_prefix(b"\\") {
                    quoted = true;
                    out.extend_from_slice(rest);
                } else {
                    out.extend_from_slice(t);
                }
            }
            Part::Single(s) | Part::AnsiC(s) => {
                quoted = true;
                out.extend_from_slice(s.of_bytes(b));
            }
            Part::Double(inner) => {
                quoted = true;
                for q in inner {
                    if let Part::Lit(s) | Part::Param { name: s, .. } = q {
                        out.extend_from_slice(s.of_bytes(b));
                    }
                }
            }
            Part::Param { name, .. } => {
                out.push(b'$');
                out.extend_from_slice(name.of_bytes(b));
            }
            _ => quoted = true,
        }
    }
    (out, quoted)
}

#[cfg(test)]
mod tests;
