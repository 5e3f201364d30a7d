//! Segments: which shoppers a campaign is for, written as a tag expression.
//!
//! ```text
//! cosmetics-lover & !staff | vip          ≡  (cosmetics-lover and not staff) or vip
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr  = and { ("|" | "or")  and }
//! and   = unary { ("&" | "and") unary }
//! unary = ("!" | "not") unary | atom
//! atom  = tag | "(" expr ")"
//! tag   = [a-z0-9] [a-z0-9_:.-]*
//! ```
//!
//! `!` binds tighter than `&`, which binds tighter than `|`; `&` and `|` are associative, so
//! `a & b & c` needs no parentheses. The words `and`, `or` and `not` mean the same as the symbols
//! in any case (`AND`, `Not`), and so cannot be tags. Tags are lowercase ASCII letters and digits,
//! then also `_ : . -` (`cosmetics-lover`, `loyalty:gold`, `zone.cosmetics`); a word is read
//! whole, so `not-staff` is one tag and `android` is not `and`. Whitespace separates tokens and is
//! otherwise ignored.
//!
//! # Limits
//!
//! Expressions are stored and come from people and API clients, so parsing is bounded: at most
//! [`MAX_LEN`] bytes not counting whitespace (and [`MAX_INPUT`] bytes in all), and at most
//! [`MAX_DEPTH`] levels of `(` and `!` nesting, so no input can exhaust the stack here or in
//! [`Expr::matches`], [`Display`](core::fmt::Display) or drop.
//!
//! # Canonical form
//!
//! [`Expr`]'s `Display` writes symbols with a space around `&` and `|` and only the parentheses
//! precedence needs (`!(a | b) & c`). Parsing it gives back an equal `Expr`, and it is never
//! longer than the limits, since it has no more non-space bytes than any text that parses to the
//! same `Expr`.

use core::fmt;
use std::collections::BTreeSet;
use std::str::FromStr;

/// Most bytes an expression may have, whitespace not counted.
pub const MAX_LEN: usize = 1024;
/// Most bytes of input in all, whitespace included.
pub const MAX_INPUT: usize = 4 * MAX_LEN;
/// Most levels of `(` and `!` an expression may nest.
pub const MAX_DEPTH: usize = 64;

/// A parsed segment expression. Only [`Expr::parse`] makes one, so every `Expr` has valid tags
/// and bounded depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expr(Node);

/// `And` and `Or` have at least two operands, none of them of the same kind (they are
/// flattened: `a & (b & c)` is `And[a, b, c]`), so equal meaning up to associativity is equal
/// structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    Tag(String),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// Why text is not a segment expression: where, and what would have been accepted there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment expression, byte {position}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Byte offset into the input.
    pub position: usize,
    /// What the parser would have accepted, e.g. "a tag, `!`, `not` or `(`".
    pub expected: &'static str,
    /// What it found instead, e.g. "`)`" or "end of input".
    pub found: String,
}

impl Expr {
    /// Parses a tag expression (grammar in the [module docs](self)).
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        check_length(text)?;
        let mut p = Parser {
            lexer: Lexer { text, at: 0 },
            peeked: None,
        };
        let node = p.or(0)?;
        match p.next()? {
            (_, Token::End) => Ok(Expr(node)),
            (at, tok) => {
                Err(p
                    .lexer
                    .error(at, "`&`, `|`, `and`, `or` or end of input", describe(tok)))
            }
        }
    }

    /// Whether a shopper with the tags `has_tag` answers true for is in this segment.
    ///
    /// ```
    /// # use dwell_cloud::profiles::segment::Expr;
    /// # use std::collections::BTreeSet;
    /// let segment = Expr::parse("cosmetics-lover & !staff | vip").unwrap();
    /// let tags: BTreeSet<&str> = ["cosmetics-lover"].into();
    /// assert!(segment.matches(|t| tags.contains(t)));
    /// ```
    pub fn matches(&self, has_tag: impl Fn(&str) -> bool) -> bool {
        self.0.eval(&has_tag)
    }

    /// The tags the expression mentions, each once, in order.
    pub fn tags(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.0.collect_tags(&mut out);
        out
    }
}

impl Node {
    fn eval<F: Fn(&str) -> bool>(&self, has: &F) -> bool {
        match self {
            Node::Tag(t) => has(t),
            Node::Not(n) => !n.eval(has),
            Node::And(ns) => ns.iter().all(|n| n.eval(has)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(has)),
        }
    }

    fn collect_tags<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Node::Tag(t) => {
                out.insert(t);
            }
            Node::Not(n) => n.collect_tags(out),
            Node::And(ns) | Node::Or(ns) => ns.iter().for_each(|n| n.collect_tags(out)),
        }
    }

    /// Writes `self` in canonical form; `parent` is the tightest operator around it.
    fn write(&self, f: &mut fmt::Formatter<'_>, parent: Prec) -> fmt::Result {
        let (prec, ns, sep) = match self {
            Node::Tag(t) => return f.write_str(t),
            Node::Not(n) => {
                f.write_str("!")?;
                return n.write(f, Prec::Not);
            }
            Node::And(ns) => (Prec::And, ns, " & "),
            Node::Or(ns) => (Prec::Or, ns, " | "),
        };
        let paren = parent > prec;
        if paren {
            f.write_str("(")?;
        }
        for (i, n) in ns.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            n.write(f, prec)?;
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Binding strength, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Top,
    Or,
    And,
    Not,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, Prec::Top)
    }
}

impl FromStr for Expr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

/// Serialized as its canonical text; deserializing parses, so limits and tag rules hold.
impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn check_length(text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_INPUT {
        return Err(ParseError {
            position: MAX_INPUT,
            expected: "at most 4096 bytes in all",
            found: format!("{} bytes", text.len()),
        });
    }
    let mut significant = 0;
    for (at, c) in text.char_indices() {
        if !c.is_whitespace() {
            significant += c.len_utf8();
            if significant > MAX_LEN {
                return Err(ParseError {
                    position: at,
                    expected: "at most 1024 bytes besides whitespace",
                    found: "more".to_string(),
                });
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Tag(&'a str),
    And,
    Or,
    Not,
    Open,
    Close,
    End,
}

fn describe(tok: Token<'_>) -> String {
    match tok {
        Token::Tag(t) => format!("`{t}`"),
        Token::And => "`&`".into(),
        Token::Or => "`|`".into(),
        Token::Not => "`!`".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::End => "end of input".into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-')
}

struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next unread character.
    at: usize,
}

impl<'a> Lexer<'a> {
    fn error(&self, position: usize, expected: &'static str, found: String) -> ParseError {
        ParseError {
            position,
            expected,
            found,
        }
    }

    fn next(&mut self) -> Result<(usize, Token<'a>), ParseError> {
        let rest = &self.text[self.at..];
        let skipped = rest.len() - rest.trim_start().len();
        self.at += skipped;
        let start = self.at;
        let rest = &self.text[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((start, Token::End));
        };
        let single = match c {
            '&' => Some(Token::And),
            '|' => Some(Token::Or),
            '!' => Some(Token::Not),
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            _ => None,
        };
        if let Some(tok) = single {
            self.at += 1;
            return Ok((start, tok));
        }
        if !is_word_char(c) {
            return Err(self.error(
                start,
                "a tag, an operator or a parenthesis",
                format!("{c:?}"),
            ));
        }
        // Word characters are ASCII, so this byte length is a char boundary.
        let len = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        self.at += len;
        for (kw, tok) in [("and", Token::And), ("or", Token::Or), ("not", Token::Not)] {
            if word.eq_ignore_ascii_case(kw) {
                return Ok((start, tok));
            }
        }
        if word.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(self.error(start, "a lowercase tag", format!("`{word}`")));
        }
        if !word.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(self.error(start, "a tag starting with a-z or 0-9", format!("`{word}`")));
        }
        Ok((start, Token::Tag(word)))
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(usize, Token<'a>)>,
}

const OPERAND: &str = "a tag, `!`, `not` or `(`";

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<(usize, Token<'a>), ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn peek(&mut self) -> Result<Token<'a>, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        // Set just above.
        Ok(self.peeked.map_or(Token::End, |(_, t)| t))
    }

    /// `depth` is the number of `(` and `!` around what is parsed now.
    fn or(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut ns = vec![self.and(depth)?];
        while self.peek()? == Token::Or {
            self.next()?;
            ns.push(self.and(depth)?);
        }
        Ok(join(ns, Node::Or, |n| match n {
            Node::Or(v) => Ok(v),
            n => Err(n),
        }))
    }

    fn and(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut ns = vec![self.unary(depth)?];
        while self.peek()? == Token::And {
            self.next()?;
            ns.push(self.unary(depth)?);
        }
        Ok(join(ns, Node::And, |n| match n {
            Node::And(v) => Ok(v),
            n => Err(n),
        }))
    }

    fn unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        match self.next()? {
            (at, Token::Not) => {
                self.deeper(at, depth)?;
                Ok(Node::Not(Box::new(self.unary(depth + 1)?)))
            }
            (_, Token::Tag(t)) => Ok(Node::Tag(t.to_string())),
            (at, Token::Open) => {
                self.deeper(at, depth)?;
                let inner = self.or(depth + 1)?;
                match self.next()? {
                    (_, Token::Close) => Ok(inner),
                    (at, tok) => {
                        Err(self
                            .lexer
                            .error(at, "`&`, `|`, `and`, `or` or `)`", describe(tok)))
                    }
                }
            }
            (at, tok) => Err(self.lexer.error(at, OPERAND, describe(tok))),
        }
    }

    fn deeper(&self, at: usize, depth: usize) -> Result<(), ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.lexer.error(
                at,
                "at most 64 levels of `(` and `!`",
                "a 65th".to_string(),
            ));
        }
        Ok(())
    }
}

/// One operand stays itself; several become `make(operands)`, with operands of the same kind
/// (`split` returns their children) spliced in.
fn join(
    ns: Vec<Node>,
    make: fn(Vec<Node>) -> Node,
    split: fn(Node) -> Result<Vec<Node>, Node>,
) -> Node {
    if ns.len() == 1 {
        return ns.into_iter().next().expect("one operand");
    }
    let mut flat = Vec::with_capacity(ns.len());
    for n in ns {
        match split(n) {
            Ok(children) => flat.extend(children),
            Err(n) => flat.push(n),
        }
    }
    make(flat)
}

/// Defines segment `id` (HQ's `POST /api/v1/segments`, the demo's sample segments): the id must
/// be a plain id, the expression parse; it is stored in its canonical form, which is returned.
/// An existing id is a conflict (segments are not redefined under the same name).
pub async fn define(
    store: &crate::store::AnyStore,
    id: &str,
    expression: &str,
    now_ms: i64,
) -> crate::error::DomainResult<String> {
    use crate::error::DomainError;
    dwell_shared::topic::validate_id(id).map_err(|e| DomainError::Invalid(format!("id: {e}")))?;
    let canonical = Expr::parse(expression)
        .map_err(|e| DomainError::Invalid(format!("expression: {e}")))?
        .to_string();
    let n = crate::on_pool!(store, pool => sqlx::query(
        "INSERT INTO segments (id, expression, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(&canonical)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .map_err(crate::store::StoreError::from)?;
    if n == 0 {
        return Err(DomainError::Conflict(format!(
            "segment {id} exists already"
        )));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(t: &str) -> Node {
        Node::Tag(t.into())
    }
    fn not(n: Node) -> Node {
        Node::Not(Box::new(n))
    }
    fn parse(s: &str) -> Node {
        Expr::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).0
    }
    fn canonical(s: &str) -> String {
        Expr::parse(s).unwrap().to_string()
    }
    /// Whether a shopper with exactly `tags` is in `expr`.
    fn is_in(expr: &str, tags: &[&str]) -> bool {
        Expr::parse(expr).unwrap().matches(|t| tags.contains(&t))
    }

    #[test]
    fn not_binds_tighter_than_and_tighter_than_or() {
        // The product's example: (cosmetics-lover & !staff) | vip.
        assert_eq!(
            parse("cosmetics-lover & !staff | vip"),
            Node::Or(vec![
                Node::And(vec![tag("cosmetics-lover"), not(tag("staff"))]),
                tag("vip"),
            ])
        );
        // a | b & c is a | (b & c), not (a | b) & c.
        assert_eq!(
            parse("a | b & c"),
            Node::Or(vec![tag("a"), Node::And(vec![tag("b"), tag("c")])])
        );
        // !a & b is (!a) & b, not !(a & b).
        assert_eq!(parse("!a & b"), Node::And(vec![not(tag("a")), tag("b")]));
        // !a | b & !c | d is (!a) | (b & !c) | d.
        assert_eq!(
            parse("!a | b & !c | d"),
            Node::Or(vec![
                not(tag("a")),
                Node::And(vec![tag("b"), not(tag("c"))]),
                tag("d"),
            ])
        );
        assert_eq!(
            parse("(a | b) & c"),
            Node::And(vec![Node::Or(vec![tag("a"), tag("b")]), tag("c")])
        );
        assert_eq!(parse("!!a"), not(not(tag("a"))));
    }

    #[test]
    fn precedence_decides_who_matches() {
        // a | b & c with only a: a | (b & c) = true; (a | b) & c would be false.
        assert!(is_in("a | b & c", &["a"]));
        assert!(!is_in("(a | b) & c", &["a"]));
        // !a & b with neither: (!a) & b = false; !(a & b) would be true.
        assert!(!is_in("!a & b", &[]));
        assert!(is_in("!(a & b)", &[]));
        // The product's example, all eight combinations worked out by hand.
        let e = "cosmetics-lover & !staff | vip";
        for (tags, want) in [
            (&[][..], false),
            (&["cosmetics-lover"][..], true),
            (&["staff"][..], false),
            (&["vip"][..], true),
            (&["cosmetics-lover", "staff"][..], false),
            (&["cosmetics-lover", "vip"][..], true),
            (&["staff", "vip"][..], true),
            (&["cosmetics-lover", "staff", "vip"][..], true),
        ] {
            assert_eq!(is_in(e, tags), want, "{tags:?}");
        }
    }

    #[test]
    fn words_mean_the_symbols_in_any_case() {
        let symbols = parse("cosmetics-lover & !staff | vip");
        for words in [
            "cosmetics-lover and not staff or vip",
            "cosmetics-lover AND NOT staff OR vip",
            "cosmetics-lover And Not staff Or vip",
            "cosmetics-lover&!staff|vip",
            "  cosmetics-lover\t&\n! staff |vip  ",
        ] {
            assert_eq!(parse(words), symbols, "{words}");
        }
        // A word is read whole: these are tags, not keywords.
        assert_eq!(parse("android"), tag("android"));
        assert_eq!(parse("not-staff"), tag("not-staff"));
        assert_eq!(
            parse("orchid & notable"),
            Node::And(vec![tag("orchid"), tag("notable")])
        );
        assert_eq!(parse("not(a)"), not(tag("a")));
    }

    #[test]
    fn tags_take_the_documented_characters() {
        for t in [
            "vip",
            "0",
            "loyalty:gold",
            "zone.cosmetics",
            "a_b-c:d.e",
            "2024-q1",
        ] {
            assert_eq!(parse(t), tag(t));
        }
    }

    #[test]
    fn associative_chains_flatten_and_print_without_parentheses() {
        let flat = Node::And(vec![tag("a"), tag("b"), tag("c")]);
        assert_eq!(parse("a & b & c"), flat);
        assert_eq!(parse("a & (b & c)"), flat);
        assert_eq!(parse("((a) & b) & c"), flat);
        assert_eq!(canonical("(a & (b & c))"), "a & b & c");
        assert_eq!(canonical("a or (b or c)"), "a | b | c");
    }

    #[test]
    fn canonical_form_keeps_only_needed_parentheses() {
        for (input, want) in [
            (
                "cosmetics-lover and not staff or vip",
                "cosmetics-lover & !staff | vip",
            ),
            ("(a | b) & c", "(a | b) & c"),
            ("(a & b) | c", "a & b | c"),
            ("!(a | b) & c", "!(a | b) & c"),
            ("not (not a)", "!!a"),
            ("!(a & b)", "!(a & b)"),
            ("((((x))))", "x"),
            ("a & (b | !(c & d)) | e", "a & (b | !(c & d)) | e"),
        ] {
            assert_eq!(canonical(input), want, "{input}");
            assert_eq!(canonical(want), want, "{want} is a fixed point");
        }
    }

    #[test]
    fn tags_lists_each_mentioned_tag_once() {
        let e = Expr::parse("vip | b & !vip | (a & c)").unwrap();
        assert_eq!(
            e.tags().into_iter().collect::<Vec<_>>(),
            ["a", "b", "c", "vip"]
        );
    }

    fn err(s: &str) -> ParseError {
        Expr::parse(s).unwrap_err()
    }

    #[test]
    fn errors_give_the_byte_and_what_was_expected() {
        let e = err("");
        assert_eq!(
            (e.position, e.expected, e.found.as_str()),
            (0, OPERAND, "end of input")
        );
        assert_eq!(
            e.to_string(),
            "segment expression, byte 0: expected a tag, `!`, `not` or `(`, found end of input"
        );
        let e = err("vip &");
        assert_eq!((e.position, e.found.as_str()), (5, "end of input"));
        let e = err("vip staff");
        assert_eq!(
            (e.position, e.expected, e.found.as_str()),
            (4, "`&`, `|`, `and`, `or` or end of input", "`staff`")
        );
        let e = err("(a | b");
        assert_eq!(
            (e.position, e.expected, e.found.as_str()),
            (6, "`&`, `|`, `and`, `or` or `)`", "end of input")
        );
        let e = err("a)");
        assert_eq!((e.position, e.found.as_str()), (1, "`)`"));
        let e = err("a & VIP");
        assert_eq!(
            (e.position, e.expected, e.found.as_str()),
            (4, "a lowercase tag", "`VIP`")
        );
        let e = err("a && b");
        assert_eq!(
            (e.position, e.expected, e.found.as_str()),
            (3, OPERAND, "`&`")
        );
        let e = err("-staff");
        assert_eq!(e.expected, "a tag starting with a-z or 0-9");
        let e = err("a & é");
        assert_eq!((e.position, e.found.as_str()), (4, "'é'"));
        let e = err("a $ b");
        assert_eq!((e.position, e.found.as_str()), (2, "'$'"));
        assert_eq!(err("()").position, 1);
        assert_eq!(err("and").position, 0);
    }

    #[test]
    fn nesting_is_limited_to_64() {
        let nest = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&nest(64)), tag("a"));
        let e = err(&nest(65));
        assert_eq!(
            (e.position, e.expected),
            (64, "at most 64 levels of `(` and `!`")
        );
        assert_eq!(parse(&format!("{}a", "!".repeat(64))), {
            let mut n = tag("a");
            for _ in 0..64 {
                n = not(n);
            }
            n
        });
        assert_eq!(err(&format!("{}a", "!".repeat(65))).position, 64);
        // Mixed: 32 `!(` pairs are 64 levels.
        assert!(Expr::parse(&format!("{}a{}", "!(".repeat(32), ")".repeat(32))).is_ok());
        assert!(Expr::parse(&format!("{}a{}", "!(".repeat(33), ")".repeat(33))).is_err());
        // Hostile: far deeper than any stack would take, refused by the length limit first.
        let e = err(&"(".repeat(1_000_000));
        assert_eq!(e.expected, "at most 4096 bytes in all");
        let e = err(&"(".repeat(2_000));
        assert_eq!(
            (e.position, e.expected),
            (1024, "at most 1024 bytes besides whitespace")
        );
    }

    #[test]
    fn length_counts_bytes_besides_whitespace() {
        let tag = "x".repeat(1024);
        assert_eq!(parse(&format!("  {tag}  ")), Node::Tag(tag.clone()));
        assert_eq!(err(&format!("{tag}y")).position, 1024);
        // 341 single-letter tags joined by `&` without spaces: 681 bytes, and 1,361 in the
        // canonical form with spaces, which still parses since spaces are not counted.
        let dense = vec!["a"; 341].join("&");
        let e = Expr::parse(&dense).unwrap();
        assert!(e.to_string().len() > 1024);
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn serde_uses_the_canonical_text_and_validates() {
        let e = Expr::parse("a and (b or c)").unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#""a & (b | c)""#);
        assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Expr>(r#""a &""#).is_err());
        assert_eq!("vip".parse::<Expr>().unwrap(), Expr(tag("vip")));
    }
}
