//! Signed coupon codes: issued by the cloud, verified by a till with no network.
//!
//! # Format (`DW1`)
//!
//! ```text
//! payload = campaign (u32 BE) ‖ serial (u64 BE) ‖ expires_min (u32 BE)          16 bytes
//! tag     = HMAC-SHA256(key, "dwell-coupon-v1" ‖ payload)[..10]                  10 bytes
//! code    = "DW1-" ‖ Crockford-base32(payload ‖ tag), most significant bit first  42 symbols
//! ```
//!
//! 26 bytes are 208 bits: 41 full symbols and a last one carrying 3 bits and two zero bits.
//! The 42 symbols are written in groups of 5, 5, 5, 5, 5, 5, 4, 4, 4 joined by `-`:
//! `DW1-00000-1R001-R4H1G-DVXWG-3GYJW-2SK60-N48B-RVP9-029M`.
//!
//! Reading is forgiving where a person typing can slip and strict everywhere else: case is
//! ignored, `-` and whitespace are ignored anywhere, and Crockford's look-alikes read as what they
//! look like (`I`, `L` → `1`; `O` → `0`). Everything else is [`CodeError::Malformed`]: another
//! prefix or version, a character outside the alphabet (`U` included), a wrong number of symbols,
//! or a last symbol whose two unused bits are not zero (so each code has exactly one value, and no
//! character can be changed without changing the bytes).
//!
//! # What verifying proves
//!
//! [`CouponKey::verify`] checks the tag in constant time before it looks at anything the payload
//! says, then the expiry: a code that verifies was signed with this key, unaltered, and has not
//! expired. The 80-bit tag leaves a forger a 2⁻⁸⁰ chance per guess. Whether the code was already
//! redeemed cannot be known offline; the server decides that. A coupon's identity is
//! `(campaign, serial)`, not its text: one code has many spellings (`dw1 …`, no dashes, `O` for
//! `0`), so redemptions must be keyed by the claims [`CouponKey::verify`] returns.
//!
//! The base32 is written here rather than taken from a crate: it is thirty lines for one fixed
//! length, and owning it lets every error name the offending character's position and lets the
//! decoder insist on the canonical last symbol.

use core::fmt;

use dwell_shared::hex;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the code says before the dashes: brand and format version.
pub const PREFIX: &str = "DW1-";
/// Length of a code as [`CouponKey::sign`] writes it: prefix, 42 symbols and 8 group dashes.
pub const CODE_LEN: usize = PREFIX.len() + SYMBOLS + GROUPS.len() - 1;

/// Domain separation: these bytes start every signed message, so a tag made for coupons is
/// useless anywhere else the same key might (wrongly) be used, and vice versa.
const DOMAIN: &[u8] = b"dwell-coupon-v1";
const PAYLOAD_LEN: usize = 16;
/// 80 bits: forging a tag by guessing takes 2⁷⁹ tries on average.
const TAG_LEN: usize = 10;
const RAW_LEN: usize = PAYLOAD_LEN + TAG_LEN;
/// ⌈208 / 5⌉.
const SYMBOLS: usize = (RAW_LEN * 8).div_ceil(5);
/// Symbols per group, in order; they add up to [`SYMBOLS`].
const GROUPS: [usize; 9] = [5, 5, 5, 5, 5, 5, 4, 4, 4];
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The server's secret for signing coupon codes: 32 bytes, HMAC-SHA256.
///
/// Its `Debug` never shows the key.
#[derive(Clone)]
pub struct CouponKey {
    key: [u8; 32],
    /// HMAC state with the key already absorbed; cloned for each code, which saves the two
    /// compression-function calls of keying per sign and verify.
    mac: HmacSha256,
}

impl fmt::Debug for CouponKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CouponKey(<redacted>)")
    }
}

/// Why a coupon key could not be read. Never contains any of the key's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("coupon key must be 64 hex digits (32 bytes): {0}")]
pub struct KeyError(hex::HexError);

impl CouponKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        CouponKey { key, mac }
    }

    /// A key written as 64 hex digits (either case; surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        hex::decode_array::<32>(s.trim())
            .map(Self::from_bytes)
            .map_err(KeyError)
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        // The OS generator fails only on a system too broken to run the cloud at all (no
        // getrandom(2) and no /dev/urandom); the edge's salts make the same call the same way.
        getrandom::fill(&mut key).expect("operating system random source available");
        Self::from_bytes(key)
    }

    /// The key as 64 lowercase hex digits, for writing it into configuration. Secret.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.key)
    }

    /// The code for `claims`: `DW1-` and 42 Crockford base32 symbols in 9 groups
    /// ([`CODE_LEN`] characters, all uppercase ASCII, digits and `-`).
    pub fn sign(&self, claims: &CouponClaims) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..PAYLOAD_LEN].copy_from_slice(&claims.to_payload());
        let tag = self.keyed(&raw[..PAYLOAD_LEN]).finalize().into_bytes();
        raw[PAYLOAD_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        encode(&raw)
    }

    /// Reads `code` and returns what it claims if it was signed with this key, unaltered, and is
    /// still valid at `now_ms` (Unix milliseconds). A code is valid up to, not including, its
    /// expiry instant [`CouponClaims::expires_ms`].
    ///
    /// Checks run in order: form ([`CodeError::Malformed`]), tag ([`CodeError::Forged`]),
    /// expiry ([`CodeError::Expired`]), so an expiry is only ever reported for a genuine code.
    /// Never panics; takes time linear in the input's length and allocates only for an error
    /// message.
    pub fn verify(&self, code: &str, now_ms: i64) -> Result<CouponClaims, CodeError> {
        let raw = decode(code)?;
        let (payload, tag) = raw.split_at(PAYLOAD_LEN);
        self.keyed(payload)
            .verify_truncated_left(tag)
            .map_err(|_| CodeError::Forged)?;
        let claims = CouponClaims::from_payload(payload);
        let expired_ms = claims.expires_ms();
        if now_ms >= expired_ms {
            return Err(CodeError::Expired { expired_ms });
        }
        Ok(claims)
    }

    fn keyed(&self, payload: &[u8]) -> HmacSha256 {
        self.mac.clone().chain_update(DOMAIN).chain_update(payload)
    }
}

/// What a coupon code says. `(campaign, serial)` identifies the coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CouponClaims {
    /// The campaign's stable numeric id.
    pub campaign: u32,
    /// Unique within the campaign.
    pub serial: u64,
    /// Expiry as whole minutes since the Unix epoch (good until the year 10136).
    pub expires_min: u32,
}

impl CouponClaims {
    /// The expiry instant in Unix milliseconds: the first millisecond the code is no longer valid.
    pub fn expires_ms(&self) -> i64 {
        i64::from(self.expires_min) * 60_000
    }

    fn to_payload(self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[..4].copy_from_slice(&self.campaign.to_be_bytes());
        p[4..12].copy_from_slice(&self.serial.to_be_bytes());
        p[12..].copy_from_slice(&self.expires_min.to_be_bytes());
        p
    }

    /// `payload` is exactly [`PAYLOAD_LEN`] bytes (split from a fixed-size array).
    fn from_payload(payload: &[u8]) -> Self {
        let be4 = |at: usize| u32::from_be_bytes([0, 1, 2, 3].map(|i| payload[at + i]));
        let serial = u64::from_be_bytes([0, 1, 2, 3, 4, 5, 6, 7].map(|i| payload[4 + i]));
        CouponClaims {
            campaign: be4(0),
            serial,
            expires_min: be4(12),
        }
    }
}

/// Why a coupon code was refused; the message is fit to show at the till.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not a Dwell code at all, or mistyped so that it is not even well-formed.
    #[error("not a valid coupon code: {0}")]
    Malformed(String),
    /// Well-formed, but the signature does not match: mistyped, altered, or forged.
    #[error("coupon code does not verify: mistyped, altered or forged")]
    Forged,
    /// Genuine, but past its expiry.
    #[error("coupon expired at {expired_ms} ms since the Unix epoch")]
    Expired {
        /// The expiry instant, Unix milliseconds.
        expired_ms: i64,
    },
}

fn encode(raw: &[u8; RAW_LEN]) -> String {
    let mut symbols = [0u8; SYMBOLS];
    let (mut acc, mut bits, mut n) = (0u16, 0u32, 0);
    for &b in raw {
        acc = (acc << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            symbols[n] = ALPHABET[usize::from((acc >> bits) & 31)];
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    // The last symbol: the remaining bits, then zeros.
    symbols[n] = ALPHABET[usize::from((acc << (5 - bits)) & 31)];

    let mut out = String::with_capacity(CODE_LEN);
    out.push_str(&PREFIX[..PREFIX.len() - 1]);
    let mut at = 0;
    for g in GROUPS {
        out.push('-');
        // ALPHABET is ASCII.
        out.extend(symbols[at..at + g].iter().map(|&c| char::from(c)));
        at += g;
    }
    out
}

/// The 5-bit value of a Crockford symbol, reading look-alikes as what they look like.
fn symbol_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == c)
        .map(|v| v as u8)
}

fn malformed(msg: impl Into<String>) -> CodeError {
    CodeError::Malformed(msg.into())
}

/// Input characters with separators dropped, each with its 1-based position in the input.
fn significant(code: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    code.chars()
        .enumerate()
        .filter(|&(_, c)| c != '-' && !c.is_whitespace())
        .map(|(i, c)| (i + 1, c))
}

fn decode(code: &str) -> Result<[u8; RAW_LEN], CodeError> {
    let mut chars = significant(code);
    let not_ours = || malformed("expected a Dwell code starting with DW1-");
    for want in ['D', 'W'] {
        match chars.next() {
            Some((_, c)) if c.eq_ignore_ascii_case(&want) => {}
            _ => return Err(not_ours()),
        }
    }
    match chars.next() {
        Some((_, c)) if symbol_value(c) == Some(1) => {}
        Some((_, c)) if c.is_ascii_alphanumeric() => {
            return Err(malformed(format!(
                "format version {c} is not supported (this reader takes DW1 codes)"
            )));
        }
        _ => return Err(not_ours()),
    }

    let mut symbols = [0u8; SYMBOLS];
    let mut count = 0usize;
    for (pos, c) in chars {
        let v = symbol_value(c).ok_or_else(|| {
            malformed(format!(
                "character {c:?} at position {pos} is not used in coupon codes"
            ))
        })?;
        if let Some(slot) = symbols.get_mut(count) {
            *slot = v;
        }
        count += 1;
    }
    if count != SYMBOLS {
        return Err(malformed(format!(
            "expected {SYMBOLS} characters after DW1-, found {count}"
        )));
    }

    let mut raw = [0u8; RAW_LEN];
    let (mut acc, mut bits, mut n) = (0u16, 0u32, 0);
    for v in symbols {
        acc = (acc << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            raw[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 42 × 5 = 210 bits: 26 bytes and 2 bits left over, which the writer sets to zero.
    if acc != 0 {
        return Err(malformed(
            "the last character is not one a coupon code can end with",
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `00 01 02 … 1f`.
    fn test_key() -> CouponKey {
        CouponKey::from_bytes(core::array::from_fn(|i| i as u8))
    }

    /// 2026-04-20T00:00:00Z.
    const APRIL_20_MIN: u32 = 29_610_720;
    const APRIL_20_MS: i64 = 1_776_643_200_000;

    fn claims() -> CouponClaims {
        CouponClaims {
            campaign: 7,
            serial: 123_456_789_012_345,
            expires_min: APRIL_20_MIN,
        }
    }

    /// Worked out independently with Python's `hmac`, `hashlib` and `base64.b32encode`
    /// (RFC 4648 alphabet translated to Crockford's):
    /// payload `00000007 00007048860ddf79 01c3d2e0`, tag `b33302a442f1bb24024d`.
    const KNOWN: &str = "DW1-00000-1R001-R4H1G-DVXWG-3GYJW-2SK60-N48B-RVP9-029M";

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

    #[test]
    fn known_claims_sign_to_the_known_code_and_back() {
        let key = test_key();
        assert_eq!(key.sign(&claims()), KNOWN);
        assert_eq!(KNOWN.len(), CODE_LEN);
        assert_eq!(key.verify(KNOWN, APRIL_20_MS - 1), Ok(claims()));
        assert_eq!(claims().expires_ms(), APRIL_20_MS);
    }

    #[test]
    fn extreme_claims_match_independent_computation() {
        // Python, as for KNOWN.
        let key = test_key();
        let zero = CouponClaims {
            campaign: 0,
            serial: 0,
            expires_min: 0,
        };
        let max = CouponClaims {
            campaign: u32::MAX,
            serial: u64::MAX,
            expires_min: u32::MAX,
        };
        assert_eq!(
            key.sign(&zero),
            "DW1-00000-00000-00000-00000-00000-1YHK9-MZBJ-KAJR-2DAG"
        );
        assert_eq!(
            key.sign(&max),
            "DW1-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-X1K6X-TNZT-NZVJ-MG7R"
        );
        assert_eq!(key.verify(&key.sign(&zero), i64::MIN), Ok(zero));
        assert_eq!(key.verify(&key.sign(&max), 0), Ok(max));
        assert_eq!(max.expires_ms(), 257_698_037_700_000);
    }

    #[test]
    fn the_shape_is_prefix_and_groups_of_five_and_four() {
        let code = test_key().sign(&claims());
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups[0], "DW1");
        let lens: Vec<usize> = groups[1..].iter().map(|g| g.len()).collect();
        assert_eq!(lens, GROUPS);
        assert!(
            code[4..]
                .bytes()
                .all(|b| b == b'-' || ALPHABET.contains(&b))
        );
    }

    #[test]
    fn every_spelling_a_person_might_type_reads_the_same() {
        let key = test_key();
        let now = APRIL_20_MS - 60_000;
        for spelling in [
            KNOWN.to_string(),
            KNOWN.to_lowercase(),
            KNOWN.replace('-', ""),
            KNOWN.replace('-', " "),
            format!("  {}\n", KNOWN.replace('-', " - ")),
            KNOWN.replace('0', "O").replace('1', "l"),
            KNOWN.replace('0', "o").replace('1', "I"),
            "dw1".to_string() + &KNOWN[3..],
        ] {
            assert_eq!(key.verify(&spelling, now), Ok(claims()), "{spelling}");
        }
    }

    #[test]
    fn changing_any_single_character_never_verifies() {
        let key = test_key();
        let now = APRIL_20_MS - 1;
        let chars: Vec<char> = KNOWN.chars().collect();
        let last = chars.len() - 1;
        // Every printable ASCII character and a few beyond, at every position; each outcome is
        // worked out from what was changed, not just "some error".
        let replacements: Vec<char> = (0x20u8..0x7f)
            .map(char::from)
            .chain(['\t', 'é', 'Ø', '０', '\u{200b}'])
            .collect();
        let mut forged = 0;
        for (at, &was) in chars.iter().enumerate() {
            for &r in &replacements {
                let mut altered = chars.clone();
                altered[at] = r;
                let altered: String = altered.into_iter().collect();
                let got = key.verify(&altered, now);
                if reading(&altered) == reading(KNOWN) {
                    // Another spelling of the same code (case, look-alike, separator).
                    assert_eq!(got, Ok(claims()), "{altered}");
                    continue;
                }
                // A body symbol replaced by another symbol keeps the form valid, so the tag must
                // catch it; except in the last symbol, where a value whose two low bits (always
                // zero in a code we write) are set is refused as non-canonical before the tag.
                let is_body_symbol = at >= PREFIX.len() && was != '-';
                let expected = match (is_body_symbol, symbol_value(was), symbol_value(r)) {
                    (true, Some(_), Some(new)) if at == last && new & 0b11 != 0 => "malformed",
                    (true, Some(_), Some(_)) => "forged",
                    // Prefix changed, a character outside the alphabet, or a symbol count of
                    // 41 or 43 (a symbol turned separator, or a separator turned symbol).
                    _ => "malformed",
                };
                match (&got, expected) {
                    (Err(CodeError::Forged), "forged") => forged += 1,
                    (Err(CodeError::Malformed(_)), "malformed") => {}
                    _ => panic!("{altered}: expected {expected}, got {got:?}"),
                }
            }
        }
        // 41 positions with 31 other values each, and 7 for the last (8 values end in 00).
        // Letters are typed in two cases, 1 in five ways (1 I i L l), 0 in three (0 O o), so
        // there are more spellings than values.
        assert!(forged >= 41 * 31 + 7, "{forged} forged");
    }

    #[test]
    fn dropping_doubling_or_swapping_characters_never_verifies() {
        let key = test_key();
        let chars: Vec<char> = KNOWN.chars().collect();
        let mut variants = Vec::new();
        for at in 0..chars.len() {
            let mut v = chars.clone();
            v.remove(at);
            variants.push(v);
            let mut v = chars.clone();
            v.insert(at, chars[at]);
            variants.push(v);
            if at + 1 < chars.len() {
                let mut v = chars.clone();
                v.swap(at, at + 1);
                variants.push(v);
            }
        }
        for v in variants {
            let s: String = v.into_iter().collect();
            if reading(&s) == reading(KNOWN) {
                continue;
            }
            let got = key.verify(&s, 0);
            assert!(
                matches!(got, Err(CodeError::Forged | CodeError::Malformed(_))),
                "{s}: {got:?}"
            );
        }
    }

    #[test]
    fn a_code_expires_at_its_expiry_minute() {
        let key = test_key();
        assert!(key.verify(KNOWN, APRIL_20_MS - 1).is_ok());
        for now in [APRIL_20_MS, APRIL_20_MS + 1, i64::MAX] {
            assert_eq!(
                key.verify(KNOWN, now),
                Err(CodeError::Expired {
                    expired_ms: APRIL_20_MS
                })
            );
        }
    }

    #[test]
    fn another_key_sees_a_forgery_even_when_expired() {
        let other = CouponKey::from_bytes([7; 32]);
        // Tag first: an expired code from someone else's key is reported forged, not expired.
        assert_eq!(other.verify(KNOWN, i64::MAX), Err(CodeError::Forged));
        assert_eq!(other.verify(KNOWN, 0), Err(CodeError::Forged));
    }

    #[test]
    fn malformed_codes_say_what_is_wrong() {
        let key = test_key();
        let msg = |code: &str| match key.verify(code, 0) {
            Err(CodeError::Malformed(m)) => m,
            other => panic!("{code:?}: {other:?}"),
        };
        assert!(msg("").contains("starting with DW1-"));
        assert!(msg("DW").contains("starting with DW1-"));
        assert!(msg("XX1-00000").contains("starting with DW1-"));
        assert!(msg("DW-").contains("starting with DW1-"));
        assert!(msg(&KNOWN.replacen("DW1", "DW2", 1)).contains("version 2 is not supported"));
        assert_eq!(msg("DW1-"), "expected 42 characters after DW1-, found 0");
        assert_eq!(
            msg(&KNOWN[..KNOWN.len() - 1]),
            "expected 42 characters after DW1-, found 41"
        );
        assert_eq!(
            msg(&format!("{KNOWN}0")),
            "expected 42 characters after DW1-, found 43"
        );
        // `U` is not in Crockford's alphabet; positions count characters from 1.
        assert_eq!(
            msg(&KNOWN.replacen("1R001", "1RU01", 1)),
            "character 'U' at position 13 is not used in coupon codes"
        );
        assert_eq!(
            msg("DW1-ÄBC"),
            "character 'Ä' at position 5 is not used in coupon codes"
        );
        // The last symbol `M` is 10100: data bits 101, zero bits 00. `N` (10101) differs only in
        // the zero bits, so it would decode to the same bytes; it must be refused instead.
        let n_end = format!("{}N", &KNOWN[..KNOWN.len() - 1]);
        assert!(msg(&n_end).contains("last character"));
    }

    #[test]
    fn error_messages_are_fit_for_the_till() {
        assert_eq!(
            CodeError::Forged.to_string(),
            "coupon code does not verify: mistyped, altered or forged"
        );
        assert_eq!(
            CodeError::Expired {
                expired_ms: APRIL_20_MS
            }
            .to_string(),
            "coupon expired at 1776643200000 ms since the Unix epoch"
        );
    }

    #[test]
    fn keys_read_from_hex_and_never_show_in_debug() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let key = CouponKey::from_hex(&format!(" {}\n", hex.to_uppercase())).unwrap();
        assert_eq!(key.to_hex(), hex);
        assert_eq!(key.sign(&claims()), KNOWN);
        assert_eq!(format!("{key:?}"), "CouponKey(<redacted>)");

        let short = CouponKey::from_hex(&hex[..62]).unwrap_err().to_string();
        assert!(
            short.starts_with("coupon key must be 64 hex digits"),
            "{short}"
        );
        let bad = CouponKey::from_hex(&hex.replace('f', "g")).unwrap_err();
        assert!(!bad.to_string().contains("1e1"), "{bad}");
        assert!(CouponKey::from_hex(&format!("{hex}00")).is_err());
    }

    #[test]
    fn generated_keys_differ_and_work() {
        let (a, b) = (CouponKey::generate(), CouponKey::generate());
        assert_ne!(a.to_hex(), b.to_hex());
        let code = a.sign(&claims());
        assert_eq!(a.verify(&code, 0), Ok(claims()));
        assert_eq!(b.verify(&code, 0), Err(CodeError::Forged));
    }

    #[test]
    fn the_tag_covers_the_domain_string() {
        // Same key, same payload, no domain prefix: a different tag, so a MAC made with this key
        // for any other purpose is not a coupon tag.
        let key = test_key();
        let payload = claims().to_payload();
        let bare = key
            .mac
            .clone()
            .chain_update(payload)
            .finalize()
            .into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..PAYLOAD_LEN].copy_from_slice(&payload);
        raw[PAYLOAD_LEN..].copy_from_slice(&bare[..TAG_LEN]);
        assert_eq!(key.verify(&encode(&raw), 0), Err(CodeError::Forged));
    }
}
