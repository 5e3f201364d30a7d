//! Eddystone-EID: the rotating 8-byte identifier of a consented shopper's app.
//!
//! Computed exactly as google/eddystone `eddystone-eid/eid-computation.md` specifies:
//! 1. temporary key = AES-128(identity key, `00×11 ‖ FF ‖ 00 00 ‖ t[31:24] ‖ t[23:16]`);
//! 2. EID = first 8 bytes of AES-128(temporary key, `00×11 ‖ K ‖ (t with its K low bits cleared) as
//!    u32 big-endian`),
//!
//! where `t` is the beacon's 32-bit time counter in seconds and `K` (0..=15) the rotation exponent:
//! the EID changes every 2^K seconds. The gateway never learns who anyone is: it passes EIDs on;
//! only the cloud, which holds the identity keys of opted-in shoppers, resolves them. The resolver
//! here (with `alloc`) precomputes the EIDs of a time window so a lookup is one map probe instead of
//! trying every key.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

/// Largest rotation exponent the spec allows (EID rotates every 2^15 s ≈ 9 h).
pub const MAX_EXPONENT: u8 = 15;

/// A 128-bit identity key shared by the shopper's app and the cloud at opt-in.
pub type IdentityKey = [u8; 16];
/// An ephemeral identifier as advertised.
pub type Eid = [u8; 8];

fn aes128(key: &[u8; 16], block: [u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.into());
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// The temporary key for beacon time `t` (it changes every 65,536 s).
pub fn temporary_key(identity_key: &IdentityKey, t: u32) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[11] = 0xff;
    block[14] = (t >> 24) as u8;
    block[15] = (t >> 16) as u8;
    aes128(identity_key, block)
}

/// Start of the rotation window that contains `t`.
pub fn window_start(exponent: u8, t: u32) -> u32 {
    let k = u32::from(exponent.min(MAX_EXPONENT));
    t & !((1u32 << k) - 1)
}

/// The EID an identity key advertises at beacon time `t` with rotation exponent `exponent`
/// (clamped to 0..=15).
pub fn compute(identity_key: &IdentityKey, exponent: u8, t: u32) -> Eid {
    let k = exponent.min(MAX_EXPONENT);
    let tk = temporary_key(identity_key, t);
    let mut block = [0u8; 16];
    block[11] = k;
    block[12..].copy_from_slice(&window_start(k, t).to_be_bytes());
    let out = aes128(&tk, block);
    let mut eid = [0u8; 8];
    eid.copy_from_slice(&out[..8]);
    eid
}

/// Which key produced an EID, found by brute force over `keys` and the windows that overlap
/// `[t - drift_s, t + drift_s]` (beacon time saturates at 0 and u32::MAX). For a handful of keys;
/// the cloud uses [`EidTable`].
pub fn find_key(keys: &[(IdentityKey, u8)], eid: &Eid, t: u32, drift_s: u32) -> Option<usize> {
    keys.iter().position(|(key, k)| {
        windows(*k, t.saturating_sub(drift_s), t.saturating_add(drift_s))
            .any(|w| compute(key, *k, w) == *eid)
    })
}

/// The window starts covering `[from, to]` for exponent `k`.
fn windows(k: u8, from: u32, to: u32) -> impl Iterator<Item = u32> {
    let step = 1u64 << k.min(MAX_EXPONENT);
    let first = u64::from(window_start(k, from));
    let last = u64::from(to);
    (0..)
        .map(move |i| first + i * step)
        .take_while(move |w| *w <= last)
        .map(|w| w as u32) // w ≤ to ≤ u32::MAX
}

#[cfg(feature = "alloc")]
pub use table::{EidTable, Resolved};

#[cfg(feature = "alloc")]
mod table {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A resolved EID: which key (by the caller's index) and which rotation window.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Resolved {
        pub key_index: usize,
        pub window_start: u32,
    }

    /// EIDs of many keys over a time window, precomputed for one-probe lookups.
    ///
    /// Build it for "now ± clock drift" and rebuild (or [`EidTable::extend`]) as time moves on. Two
    /// keys that collide on an 8-byte EID in the same window (probability ~n²/2⁶⁵) resolve to
    /// neither: a wrong shopper is worse than no shopper.
    #[derive(Clone, Debug, Default)]
    pub struct EidTable {
        map: BTreeMap<Eid, Option<Resolved>>,
    }

    impl EidTable {
        pub fn new() -> Self {
            Self::default()
        }

        /// Adds the EIDs of one key for every window overlapping `[from, to]`.
        pub fn extend(
            &mut self,
            key_index: usize,
            key: &IdentityKey,
            exponent: u8,
            from: u32,
            to: u32,
        ) {
            for w in windows(exponent, from, to) {
                let r = Resolved {
                    key_index,
                    window_start: w,
                };
                self.map
                    .entry(compute(key, exponent, w))
                    .and_modify(|e| {
                        if e.is_some_and(|old| old.key_index != key_index) {
                            *e = None;
                        }
                    })
                    .or_insert(Some(r));
            }
        }

        /// A table for `keys` over `[from, to]`.
        pub fn build(keys: &[(IdentityKey, u8)], from: u32, to: u32) -> Self {
            let mut t = Self::new();
            for (i, (key, k)) in keys.iter().enumerate() {
                t.extend(i, key, *k, from, to);
            }
            t
        }

        pub fn resolve(&self, eid: &Eid) -> Option<Resolved> {
            self.map.get(eid).copied().flatten()
        }

        pub fn len(&self) -> usize {
            self.map.len()
        }

        pub fn is_empty(&self) -> bool {
            self.map.is_empty()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: IdentityKey = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16,
    ];

    #[test]
    fn matches_the_radius_networks_vector() {
        // RadiusNetworks/ephemeral_calc spec: key 0102…16, K=10, t=0 → a9b76a71c5f89290.
        assert_eq!(
            compute(&KEY, 10, 0),
            [0xa9, 0xb7, 0x6a, 0x71, 0xc5, 0xf8, 0x92, 0x90]
        );
    }

    #[test]
    fn eid_is_constant_within_a_window_and_changes_across() {
        let a = compute(&KEY, 10, 1024);
        assert_eq!(a, compute(&KEY, 10, 2047));
        assert_ne!(a, compute(&KEY, 10, 2048));
    }

    #[test]
    fn temporary_key_changes_every_65536_seconds() {
        assert_eq!(temporary_key(&KEY, 0), temporary_key(&KEY, 65_535));
        assert_ne!(temporary_key(&KEY, 0), temporary_key(&KEY, 65_536));
    }

    #[test]
    fn find_key_tolerates_drift_only_within_bounds() {
        let other = [7u8; 16];
        let keys = [(other, 10), (KEY, 10)];
        let eid = compute(&KEY, 10, 5_000);
        assert_eq!(find_key(&keys, &eid, 5_100, 0), Some(1));
        // the EID of window [4096, 5120) seen at 6000 resolves with 1000 s drift allowed, not 500
        assert_eq!(find_key(&keys, &eid, 6_000, 1_000), Some(1));
        assert_eq!(find_key(&keys, &eid, 6_000, 500), None);
    }

    #[test]
    fn windows_near_the_counter_end_do_not_overflow() {
        let eid = compute(&KEY, 15, u32::MAX);
        assert_eq!(find_key(&[(KEY, 15)], &eid, u32::MAX - 3, 10), Some(0));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn table_resolves_every_key_in_its_window() {
        let keys: alloc::vec::Vec<(IdentityKey, u8)> =
            (0u8..50).map(|i| ([i; 16], (i % 4) + 8)).collect();
        let table = EidTable::build(&keys, 100_000, 100_000 + 3_600);
        for (i, (key, k)) in keys.iter().enumerate() {
            let r = table.resolve(&compute(key, *k, 101_000)).unwrap();
            assert_eq!(r.key_index, i);
            assert_eq!(r.window_start, window_start(*k, 101_000));
        }
        assert_eq!(table.resolve(&compute(&KEY, 10, 101_000)), None);
    }
}
