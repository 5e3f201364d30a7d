//! Segment expressions: any input never panics the parser; whatever parses prints a canonical
//! form that parses back to the same expression (and prints the same), mentions at least one
//! tag, and its negation `!(…)`, when within the limits, matches exactly the other shoppers.
//!
//! Seeds (`seeds/segment_expr/`): the grammar's examples in symbols and in words, precedence and
//! associativity cases, nesting at and past the depth limit, and each kind of error.
#![no_main]

use dwell_cloud::profiles::segment::Expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(e) = Expr::parse(&text) else {
        return;
    };
    let canonical = e.to_string();
    let back = Expr::parse(&canonical).expect("the canonical form parses");
    assert_eq!(back, e, "{canonical}");
    assert_eq!(back.to_string(), canonical);
    assert!(!e.tags().is_empty());

    let has = |t: &str| t.len() % 2 == 0;
    if let Ok(not) = Expr::parse(&format!("!({canonical})")) {
        assert_eq!(not.matches(has), !e.matches(has), "{canonical}");
        assert_eq!(not.tags(), e.tags());
    }
});
