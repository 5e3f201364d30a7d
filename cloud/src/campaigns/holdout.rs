//! The holdout: shoppers who qualified for a campaign but are, by design, not sent its coupon.
//!
//! Lift is the difference between what the treated and the held-out shoppers went on to do, so
//! the split must be random with respect to anything that affects behaviour, and stable:
//!
//! - **Deterministic.** A shopper's arm is a function of (salt, campaign, shopper) alone, so they
//!   stay in the same arm for the campaign's whole life, on every visit, whichever cloud worker
//!   handles the event, after restarts, with no table of assignments to keep consistent.
//! - **Uniform.** Each shopper is held out with probability `holdout_permille / 1000`.
//! - **Independent across campaigns.** The campaign is hashed in, so being held out of one
//!   campaign says nothing about another; nobody is held out of everything.
//! - **Unpredictable.** The salt is a server secret (the HMAC key), so a shopper, or the app,
//!   cannot work out their arm and game it by switching ids.
//!
//! # Computation
//!
//! ```text
//! x      = first 8 bytes, big-endian, of
//!          HMAC-SHA256(key = salt, "dwell-holdout-v1" ‖ len(campaign) as u64 BE ‖ campaign ‖ shopper)
//! bucket = ⌊x · 1000 / 2⁶⁴⌋                                     ∈ 0..1000
//! held out  ⇔  bucket < holdout_permille
//! ```
//!
//! The campaign's length prefix makes the message injective (no two (campaign, shopper) pairs
//! share a message, whatever bytes ids contain). The bucket is the multiply-shift reduction
//! (Lemire): no rejection loop, and each bucket receives ⌊2⁶⁴/1000⌋ or ⌈2⁶⁴/1000⌉ of the 2⁶⁴
//! values of `x`, so the relative bias is below 1000/2⁶⁴ ≈ 5.4·10⁻¹⁷, far under anything
//! measurable (`x % 1000` would do as well, at the same bias, but would read the low bits).
//!
//! Because the bucket does not depend on the share, raising the share only moves treated
//! shoppers into the holdout and never the other way; every shopper held out at 5 % is also
//! held out at 10 %.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Domain separation from every other use of the same secret.
const DOMAIN: &[u8] = b"dwell-holdout-v1";

/// Whether `shopper` is in `campaign`'s holdout, which takes `holdout_permille` of shoppers
/// (0 = nobody, 1000 or more = everybody). `salt` is the server's secret holdout key; any length
/// works, 32 random bytes are plenty.
pub fn in_holdout(campaign: &str, shopper: &str, holdout_permille: u16, salt: &[u8]) -> bool {
    bucket(campaign, shopper, salt) < holdout_permille
}

/// The shopper's bucket for the campaign, uniform in `0..1000`.
fn bucket(campaign: &str, shopper: &str, salt: &[u8]) -> u16 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes keys of any length");
    let digest = mac
        .chain_update(DOMAIN)
        .chain_update((campaign.len() as u64).to_be_bytes())
        .chain_update(campaign)
        .chain_update(shopper)
        .finalize()
        .into_bytes();
    let x = u64::from_be_bytes([0, 1, 2, 3, 4, 5, 6, 7].map(|i| digest[i]));
    // < 1000 since x < 2^64.
    ((u128::from(x) * 1000) >> 64) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const SALT: &[u8] = b"holdout-salt";
    const N: usize = 100_000;

    fn shopper(i: usize) -> String {
        format!("shopper-{i}")
    }

    #[test]
    fn known_buckets() {
        // Worked out independently with Python's hmac and hashlib from the formula in the docs:
        // first 8 bytes 57f6e185348a23db, 5b3c407d7bfb236a, 090fedeaabf77420, 3b230c64fdf73cb7.
        let got: Vec<u16> = (1..=4)
            .map(|i| bucket("spring-cosmetics", &shopper(i), SALT))
            .collect();
        assert_eq!(got, [343, 356, 35, 231]);
        assert!(in_holdout("spring-cosmetics", "shopper-3", 36, SALT));
        assert!(!in_holdout("spring-cosmetics", "shopper-3", 35, SALT));
    }

    #[test]
    fn nobody_at_zero_everybody_at_a_thousand_or_more() {
        for i in 0..1_000 {
            let s = shopper(i);
            assert!(!in_holdout("c", &s, 0, SALT));
            assert!(in_holdout("c", &s, 1000, SALT));
            assert!(in_holdout("c", &s, u16::MAX, SALT));
        }
    }

    /// The buckets of shoppers `0..N` in `campaign` under `salt`. 100,000 HMACs take about two
    /// seconds in a debug build, so each table is computed once and shared by the tests.
    fn buckets(campaign: &str, salt: &[u8]) -> Vec<u16> {
        (0..N)
            .map(|i| bucket(campaign, &shopper(i), salt))
            .collect()
    }

    fn spring() -> &'static [u16] {
        static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
        TABLE.get_or_init(|| buckets("spring-cosmetics", SALT))
    }

    #[test]
    fn the_held_out_share_is_the_permille() {
        let spring = spring();
        // `in_holdout` is `bucket < permille`.
        for (i, &b) in spring.iter().enumerate().take(500) {
            for permille in [b, b + 1] {
                let held = in_holdout("spring-cosmetics", &shopper(i), permille, SALT);
                assert_eq!(held, b < permille);
            }
        }
        // The share of N shoppers held out at p has standard deviation √(p(1−p)/N), at most
        // 1.58 ‰ (p = ½). The bound of ±10 ‰ is over 6 σ for every p: a correct hash never misses
        // it (and these inputs are fixed, so the test cannot flake), while a skewed reduction,
        // a wrong scale or a constant arm does.
        for permille in [1u16, 50, 100, 250, 500, 900, 999] {
            let held = spring.iter().filter(|&&b| b < permille).count();
            let share_permille = held as f64 * 1000.0 / N as f64;
            assert!(
                (share_permille - f64::from(permille)).abs() <= 10.0,
                "{permille} ‰ asked, {share_permille} ‰ held out"
            );
        }
    }

    #[test]
    fn buckets_are_uniform() {
        // χ² of the 1000 bucket counts over N shoppers, 999 degrees of freedom: mean 999,
        // standard deviation √1998 ≈ 44.7. 1,250 is 5.6 σ above the mean (p < 10⁻⁷).
        let mut counts = vec![0u32; 1000];
        for &b in spring() {
            counts[usize::from(b)] += 1;
        }
        let expected = N as f64 / 1000.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 1_250.0, "χ² = {chi2}");
    }

    /// χ² of the 2×2 table (held out of A? × held out of B?) over the same N shoppers.
    fn chi2_2x2(a: &[u16], b: &[u16], permille: u16) -> f64 {
        let mut t = [[0f64; 2]; 2];
        for (&x, &y) in a.iter().zip(b) {
            t[usize::from(x < permille)][usize::from(y < permille)] += 1.0;
        }
        let n = a.len() as f64;
        let rows = [t[0][0] + t[0][1], t[1][0] + t[1][1]];
        let cols = [t[0][0] + t[1][0], t[0][1] + t[1][1]];
        let mut chi2 = 0.0;
        for x in 0..2 {
            for y in 0..2 {
                let e = rows[x] * cols[y] / n;
                chi2 += (t[x][y] - e).powi(2) / e;
            }
        }
        chi2
    }

    #[test]
    fn arms_are_independent_across_campaigns() {
        // χ² with 1 degree of freedom exceeds 23.9 with probability 10⁻⁶ when the arms are
        // independent. The same campaign twice (the control) is totally dependent: χ² = N.
        let summer = buckets("summer-shoes", SALT);
        for permille in [100, 500] {
            let chi2 = chi2_2x2(spring(), &summer, permille);
            assert!(chi2 < 23.9, "{permille} ‰: χ² = {chi2}");
        }
        let same = chi2_2x2(spring(), spring(), 100);
        assert!(same > 0.99 * N as f64, "control: χ² = {same}");
    }

    #[test]
    fn another_salt_gives_independent_arms() {
        let other = buckets("spring-cosmetics", b"another salt");
        let chi2 = chi2_2x2(spring(), &other, 100);
        assert!(chi2 < 23.9, "χ² = {chi2}");
    }

    #[test]
    fn raising_the_share_only_adds_shoppers_to_the_holdout() {
        for i in 0..10_000 {
            let s = shopper(i);
            let at = |p| in_holdout("c", &s, p, SALT);
            assert!(!at(50) || at(100), "{s}");
        }
    }

    #[test]
    fn campaign_and_shopper_do_not_run_together() {
        // Without the length prefix both would hash "ab" ‖ "c" = "a" ‖ "bc".
        let salt = b"k";
        let a: Vec<u16> = (0..64)
            .map(|i| bucket("ab", &format!("c{i}"), salt))
            .collect();
        let b: Vec<u16> = (0..64)
            .map(|i| bucket("a", &format!("bc{i}"), salt))
            .collect();
        assert_ne!(a, b);
    }
}
