//! Property tests of the cloud's pure logic.
//!
//! - Coupon codes: sign → verify returns the claims for any claims and key; any string at all,
//!   and strings shaped like codes, never panic verify and never verify; a valid code with one
//!   symbol changed never verifies; a code read by another key is forged.
//! - Segment expressions: any string never panics the parser, and whatever parses prints to a
//!   canonical form that parses back to the same expression; expressions generated as trees and
//!   written out (fully parenthesised, in symbols or words, in any case and spacing) parse to an
//!   expression that matches exactly the tag sets a naive evaluator of the tree says, and mentions
//!   exactly the tree's tags.
//! - Holdout: nobody at 0 ‰, everybody at 1000 ‰, and raising the share only adds shoppers.
//!
//! Case counts keep the file to a few seconds in a debug build; `cloud/fuzz` runs the no-panic
//! properties for minutes.

use std::collections::BTreeSet;

use dwell_cloud::campaigns::holdout::in_holdout;
use dwell_cloud::coupons::code::{CODE_LEN, CodeError, CouponClaims, CouponKey};
use dwell_cloud::profiles::segment::Expr;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Coupon codes
// ---------------------------------------------------------------------------------------------

fn claims() -> impl Strategy<Value = CouponClaims> {
    (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(campaign, serial, expires_min)| {
        CouponClaims {
            campaign,
            serial,
            expires_min,
        }
    })
}

/// What the decoder reads: upper case, no separators, look-alikes folded.
fn reading(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        })
        .collect()
}

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sign_then_verify_gives_the_claims_back(key in any::<[u8; 32]>(), c in claims(),
                                              before_ms in 1i64..=i64::MAX / 2) {
        let key = CouponKey::from_bytes(key);
        let code = key.sign(&c);
        prop_assert_eq!(code.len(), CODE_LEN);
        prop_assert!(code.starts_with("DW1-"));
        let now = c.expires_ms().saturating_sub(before_ms);
        prop_assert_eq!(key.verify(&code, now), Ok(c));
        prop_assert_eq!(key.verify(&code.to_lowercase().replace('-', " "), now), Ok(c));
        prop_assert_eq!(
            key.verify(&code, c.expires_ms()),
            Err(CodeError::Expired { expired_ms: c.expires_ms() })
        );
    }

    #[test]
    fn another_key_calls_it_forged(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), c in claims()) {
        prop_assume!(a != b);
        let code = CouponKey::from_bytes(a).sign(&c);
        prop_assert_eq!(CouponKey::from_bytes(b).verify(&code, i64::MIN), Err(CodeError::Forged));
    }

    #[test]
    fn changing_one_symbol_never_verifies(c in claims(), at in 4usize..CODE_LEN,
                                          r in select(CROCKFORD.chars().collect::<Vec<_>>())) {
        let key = CouponKey::from_bytes([0x5a; 32]);
        let code = key.sign(&c);
        let mut altered: Vec<char> = code.chars().collect();
        altered[at] = r;
        let altered: String = altered.into_iter().collect();
        let got = key.verify(&altered, i64::MIN);
        if reading(&altered) == reading(&code) {
            prop_assert_eq!(got, Ok(c));
        } else {
            prop_assert!(
                matches!(got, Err(CodeError::Forged | CodeError::Malformed(_))),
                "{} → {:?}", altered, got
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_string_is_refused_without_panicking(s in any::<String>(), now in any::<i64>()) {
        let key = CouponKey::from_bytes([1; 32]);
        prop_assert!(key.verify(&s, now).is_err());
    }

    /// Past the prefix check and mostly the right length, so most reach the tag check.
    #[test]
    fn code_shaped_strings_are_refused_without_panicking(
        body in "[0-9A-Za-z \\-]{38,46}", now in any::<i64>()
    ) {
        let key = CouponKey::from_bytes([1; 32]);
        let got = key.verify(&format!("DW1-{body}"), now);
        prop_assert!(matches!(got, Err(CodeError::Forged | CodeError::Malformed(_))), "{:?}", got);
    }
}

// ---------------------------------------------------------------------------------------------
// Segment expressions
// ---------------------------------------------------------------------------------------------

/// The test's own expression tree, independent of the parser's.
#[derive(Debug, Clone)]
enum Tree {
    Tag(&'static str),
    Not(Box<Tree>),
    And(Box<Tree>, Box<Tree>),
    Or(Box<Tree>, Box<Tree>),
}

/// Few enough that generated tag sets often hit them; all the tag characters appear.
const TAGS: [&str; 6] = [
    "vip",
    "staff",
    "a",
    "loyalty:gold",
    "zone.cosmetics",
    "x_1-y",
];

impl Tree {
    fn eval(&self, tags: &BTreeSet<&str>) -> bool {
        match self {
            Tree::Tag(t) => tags.contains(t),
            Tree::Not(t) => !t.eval(tags),
            Tree::And(a, b) => a.eval(tags) && b.eval(tags),
            Tree::Or(a, b) => a.eval(tags) || b.eval(tags),
        }
    }

    fn tags(&self, out: &mut BTreeSet<&'static str>) {
        match self {
            Tree::Tag(t) => {
                out.insert(t);
            }
            Tree::Not(t) => t.tags(out),
            Tree::And(a, b) | Tree::Or(a, b) => {
                a.tags(out);
                b.tags(out);
            }
        }
    }

    /// Fully parenthesised, so the text's structure is the tree's whatever the precedence;
    /// `style` picks symbols or words, their case, and the spacing, per node.
    fn write(&self, style: &mut impl Iterator<Item = u8>, out: &mut String) {
        let mut s = style.next().unwrap_or(0);
        let mut pick = |n: u8| {
            let v = s % n;
            s /= n;
            v
        };
        let space = [" ", "", "  ", "\t"][usize::from(pick(4))];
        let op = |sym: &str, word: &str, pick: &mut dyn FnMut(u8) -> u8| match pick(3) {
            0 => sym.to_string(),
            1 => format!(" {word} "),
            _ => format!(" {} ", word.to_uppercase()),
        };
        match self {
            Tree::Tag(t) => out.push_str(t),
            Tree::Not(t) => {
                let o = op("!", "not", &mut pick);
                out.push_str(&o);
                out.push_str(space);
                out.push('(');
                t.write(style, out);
                out.push(')');
            }
            Tree::And(a, b) | Tree::Or(a, b) => {
                let o = match self {
                    Tree::And(..) => op("&", "and", &mut pick),
                    _ => op("|", "or", &mut pick),
                };
                out.push('(');
                a.write(style, out);
                out.push(')');
                out.push_str(space);
                out.push_str(&o);
                out.push_str(space);
                out.push('(');
                b.write(style, out);
                out.push(')');
            }
        }
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    select(&TAGS[..])
        .prop_map(Tree::Tag)
        .prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| Tree::Not(Box::new(t))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Tree::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Tree::Or(Box::new(a), Box::new(b))),
            ]
        })
}

fn tag_set() -> impl Strategy<Value = BTreeSet<&'static str>> {
    proptest::sample::subsequence(&TAGS[..], 0..=TAGS.len()).prop_map(|v| v.into_iter().collect())
}

fn written(t: &Tree, style: &[u8]) -> String {
    let mut out = String::new();
    t.write(&mut style.iter().copied().cycle(), &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn matches_agrees_with_a_naive_evaluator(t in tree(), style in prop::collection::vec(any::<u8>(), 1..16),
                                             sets in prop::collection::vec(tag_set(), 8)) {
        let text = written(&t, &style);
        let e = Expr::parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        for tags in &sets {
            prop_assert_eq!(e.matches(|x| tags.contains(x)), t.eval(tags), "{} with {:?}", text, tags);
        }
        let mut want = BTreeSet::new();
        t.tags(&mut want);
        prop_assert_eq!(e.tags(), want);
    }

    #[test]
    fn the_canonical_form_parses_back_to_the_same_expression(t in tree(), style in prop::collection::vec(any::<u8>(), 1..16),
                                                              sets in prop::collection::vec(tag_set(), 8)) {
        let e = Expr::parse(&written(&t, &style)).unwrap();
        let canonical = e.to_string();
        let back = Expr::parse(&canonical).map_err(|err| TestCaseError::fail(format!("{canonical}: {err}")))?;
        prop_assert_eq!(&back, &e, "{}", canonical);
        prop_assert_eq!(back.to_string(), canonical.clone());
        // And it means the same, checked against the tree rather than against `e`.
        for tags in &sets {
            prop_assert_eq!(back.matches(|x| tags.contains(x)), t.eval(tags), "{}", canonical);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_string_parses_or_errs_without_panicking(s in any::<String>()) {
        if let Ok(e) = Expr::parse(&s) {
            prop_assert_eq!(Expr::parse(&e.to_string()), Ok(e));
        }
    }

    /// Mostly the grammar's own characters, so many parse and the rest fail deep inside.
    #[test]
    fn expression_shaped_strings_round_trip_when_they_parse(s in "[a-cA-C0-9_:.\\- &|!()ornt\t]{0,80}") {
        match Expr::parse(&s) {
            Ok(e) => prop_assert_eq!(Expr::parse(&e.to_string()), Ok(e)),
            Err(err) => prop_assert!(err.position <= s.len() && s.is_char_boundary(err.position)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Holdout
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn holdout_share_is_monotone_and_bounded(campaign in ".{0,24}", shopper in ".{0,24}",
                                             salt in prop::collection::vec(any::<u8>(), 0..64),
                                             lo in 0u16..=1000, hi in 0u16..=1000) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        prop_assert!(!in_holdout(&campaign, &shopper, 0, &salt));
        prop_assert!(in_holdout(&campaign, &shopper, 1000, &salt));
        if in_holdout(&campaign, &shopper, lo, &salt) {
            prop_assert!(in_holdout(&campaign, &shopper, hi, &salt));
        }
        prop_assert_eq!(
            in_holdout(&campaign, &shopper, lo, &salt),
            in_holdout(&campaign, &shopper, lo, &salt)
        );
    }
}
