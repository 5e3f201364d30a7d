//! Coupon codes: any input never panics `verify`, and only a spelling of a code `sign` wrote
//! verifies; the first 16 bytes read as claims sign to a code that verifies back to them.
//!
//! Seeds (`seeds/coupon_code/`) are codes signed with this target's key (so mutations reach the
//! tag check and the expiry), respelled ones (lower case, no dashes, `O`/`I`/`L`), and refusals:
//! another key's code, a wrong version, a bad character, a non-canonical last symbol, cut short.
#![no_main]

use std::sync::LazyLock;

use dwell_cloud::coupons::code::{CodeError, CouponClaims, CouponKey};
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<CouponKey> = LazyLock::new(|| CouponKey::from_bytes([0x42; 32]));

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

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Nothing expires before i64::MIN; everything genuine has expired at i64::MAX.
    match KEY.verify(&text, i64::MIN) {
        Ok(claims) => {
            assert_eq!(reading(&text), reading(&KEY.sign(&claims)), "{text:?}");
            let expired_ms = claims.expires_ms();
            assert_eq!(
                KEY.verify(&text, i64::MAX),
                Err(CodeError::Expired { expired_ms })
            );
        }
        Err(CodeError::Expired { .. }) => panic!("{text:?} expired before i64::MIN"),
        Err(CodeError::Forged | CodeError::Malformed(_)) => {
            assert!(!matches!(KEY.verify(&text, i64::MAX), Ok(_)));
        }
    }

    if let Some(b) = data.first_chunk::<16>() {
        let claims = CouponClaims {
            campaign: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            serial: u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
            expires_min: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        };
        let code = KEY.sign(&claims);
        assert_eq!(KEY.verify(&code, claims.expires_ms() - 1), Ok(claims));
    }
});
