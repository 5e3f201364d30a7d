//! Resolving the EIDs gateways saw to opted-in shoppers, by table lookup.
//!
//! An Eddystone-EID is AES-128 of the shopper's beacon time under a key only the cloud and the
//! shopper's app know, so "who is `eid:…`?" can't be answered by decoding; trying every registered
//! key per event would cost a million AES operations at a million shoppers. Instead the resolver
//! keeps a **precomputed table** of the EIDs every registered key advertises in the windows around
//! now: one hash probe per event.
//!
//! # Time
//! A shopper's beacon time is `unix seconds + clock_offset_s` (the offset is the app's counter
//! minus the server's clock at registration; apps that use Unix time send 0), taken modulo 2³², so
//! the counter wraps as the spec's 32-bit counter does. An EID seen at event time `t` resolves if
//! it is the shopper's EID for a window that overlaps `[t − drift_s, t + drift_s]`: a phone clock
//! that is off by up to `drift_s` still resolves, a replayed EID from further away does not.
//!
//! # The table
//! It covers `[now − lookback_s − drift_s, now + drift_s + refresh_s]` (unix seconds), rebuilt by
//! [`Resolver::refresh`] every `refresh_s` (default 60 s) off the async threads; a new
//! registration is added at once. Each key contributes one entry per rotation window in the range:
//! with the usual exponents (K ≥ 9, 8.5 min and up) two or three. Events older than the table
//! (a gateway catching up after an outage) are resolved by a table built for their own hour and
//! kept in a small cache ([`HISTORIC_TABLES`]): slower, but still no per-key search per event.
//!
//! Two keys whose EIDs collide in a window (probability ~n²/2⁶⁵) resolve to neither: a wrong
//! shopper is worse than none. An opted-out or erased shopper is removed at once and their EIDs
//! resolve to nobody.

use dwell_shared::eid::{self, Eid, IdentityKey, MAX_EXPONENT};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, RwLock};

/// Tables of past hours kept for catching-up gateways.
pub const HISTORIC_TABLES: usize = 4;

/// One registered, opted-in shopper's EID parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    pub shopper: Arc<str>,
    pub key: IdentityKey,
    pub exponent: u8,
    pub clock_offset_s: i64,
}

impl std::fmt::Debug for RegisteredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity key is a secret.
        f.debug_struct("RegisteredKey")
            .field("shopper", &self.shopper)
            .field("exponent", &self.exponent)
            .finish_non_exhaustive()
    }
}

/// Resolver knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Phone clock error tolerated, seconds.
    pub drift_s: u32,
    /// How far back the live table reaches (events delayed by batching or a short outage).
    pub lookback_s: u32,
    /// How often the live table is rebuilt; it reaches this far ahead.
    pub refresh_s: u32,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            drift_s: 120,
            lookback_s: 900,
            refresh_s: 60,
        }
    }
}

/// A resolved EID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub shopper: Arc<str>,
    /// Start of the EID's rotation window, in the shopper's beacon time.
    pub window_start: u32,
}

/// Counters (read with [`Resolver::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverStats {
    pub registered: usize,
    pub table_entries: usize,
    pub collisions: usize,
    pub historic_builds: u64,
}

/// EIDs are AES output, uniformly random: their first 8 bytes are already a perfect hash.
#[derive(Default)]
struct EidHasher(u64);

impl Hasher for EidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type EidMap = HashMap<u64, Hit, BuildHasherDefault<EidHasher>>;

/// Where an EID leads: a slot in the key list and the window, or a collision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    slot: u32,
    window: u32,
}

const COLLISION: u32 = u32::MAX;

/// EIDs of a set of keys over a range of unix seconds.
#[derive(Debug, Default)]
struct Table {
    map: EidMap,
    from_s: i64,
    to_s: i64,
    collisions: usize,
}

impl Table {
    fn build(keys: &[Option<RegisteredKey>], from_s: i64, to_s: i64) -> Table {
        let mut t = Table {
            map: EidMap::with_capacity_and_hasher(keys.len() * 3, Default::default()),
            from_s,
            to_s,
            collisions: 0,
        };
        for (slot, k) in keys.iter().enumerate() {
            if let Some(k) = k {
                t.add(slot as u32, k);
            }
        }
        t
    }

    fn add(&mut self, slot: u32, k: &RegisteredKey) {
        let exp = k.exponent.min(MAX_EXPONENT);
        let step = 1i64 << exp;
        let first = (self.from_s + k.clock_offset_s).div_euclid(step) * step;
        let last = self.to_s + k.clock_offset_s;
        let mut w = first;
        while w <= last {
            // Beacon time is a 32-bit counter: wrap as the phone's does (2^K divides 2^32, so a
            // wrapped window start is still aligned).
            let bt = w.rem_euclid(1i64 << 32) as u32;
            let e = u64::from_be_bytes(eid::compute(&k.key, exp, bt));
            let hit = Hit { slot, window: bt };
            match self.map.entry(e) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(hit);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if o.get().slot != slot && o.get().slot != COLLISION {
                        o.insert(Hit {
                            slot: COLLISION,
                            window: 0,
                        });
                        self.collisions += 1;
                    }
                }
            }
            w += step;
        }
    }

    fn covers(&self, t: i64, drift: i64) -> bool {
        t - drift >= self.from_s && t + drift <= self.to_s
    }
}

#[derive(Debug, Default)]
struct Inner {
    keys: Vec<Option<RegisteredKey>>,
    by_shopper: HashMap<Arc<str>, u32>,
    live: Table,
}

/// The EID → shopper resolver shared by ingest workers (cheap to share: `Arc<Resolver>`).
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    inner: RwLock<Inner>,
    /// Tables for past hours, newest last: (hour start, table).
    historic: Mutex<VecDeque<(i64, Arc<Table>)>>,
    historic_builds: std::sync::atomic::AtomicU64,
}

impl Resolver {
    pub fn new(config: ResolverConfig) -> Resolver {
        Resolver {
            config,
            inner: RwLock::default(),
            historic: Mutex::default(),
            historic_builds: Default::default(),
        }
    }

    pub fn config(&self) -> ResolverConfig {
        self.config
    }

    /// Replaces every key and rebuilds the live table around `now_s`.
    pub fn load(&self, keys: Vec<RegisteredKey>, now_s: i64) {
        {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.by_shopper = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.shopper.clone(), i as u32))
                .collect();
            inner.keys = keys.into_iter().map(Some).collect();
        }
        self.refresh(now_s);
    }

    /// Rebuilds the live table for the range around `now_s`. CPU-bound (about a second per
    /// million shoppers): call it from a blocking thread.
    pub fn refresh(&self, now_s: i64) {
        let (keys, n) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            (inner.keys.clone(), inner.keys.len())
        };
        let (from, to) = self.live_range(now_s);
        let mut table = Table::build(&keys, from, to);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Keys registered while the table was being built.
        for slot in n..inner.keys.len() {
            if let Some(k) = &inner.keys[slot] {
                table.add(slot as u32, k);
            }
        }
        inner.live = table;
        drop(inner);
        self.historic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn live_range(&self, now_s: i64) -> (i64, i64) {
        let c = self.config;
        (
            now_s - i64::from(c.lookback_s) - i64::from(c.drift_s),
            now_s + i64::from(c.drift_s) + i64::from(c.refresh_s),
        )
    }

    /// Adds (or replaces) a shopper's key; their EIDs resolve from now on.
    pub fn register(&self, key: RegisteredKey) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let slot = match inner.by_shopper.get(&key.shopper) {
            Some(&s) => s,
            None => {
                let s = inner.keys.len() as u32;
                inner.keys.push(None);
                inner.by_shopper.insert(key.shopper.clone(), s);
                s
            }
        };
        inner.live.add(slot, &key);
        inner.keys[slot as usize] = Some(key);
        drop(inner);
        self.historic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Removes a shopper (opt-out, erase): their EIDs resolve to nobody from now on.
    pub fn remove(&self, shopper: &str) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match inner.by_shopper.remove(shopper) {
            Some(slot) => {
                inner.keys[slot as usize] = None;
                true
            }
            None => false,
        }
    }

    pub fn is_registered(&self, shopper: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_shopper.contains_key(shopper)
    }

    /// Which opted-in shopper advertised `eid` at unix time `ts_ms`, if any.
    pub fn resolve(&self, eid: &Eid, ts_ms: i64) -> Option<Resolution> {
        let t = ts_ms.div_euclid(1000);
        let drift = i64::from(self.config.drift_s);
        let e = u64::from_be_bytes(*eid);
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if inner.live.covers(t, drift) {
            return self.check(&inner, inner.live.map.get(&e).copied(), t);
        }
        drop(inner);
        let table = self.historic_table(t);
        let hit = table.map.get(&e).copied();
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        self.check(&inner, hit, t)
    }

    /// A table hit is the shopper's if the slot is still theirs and the window is within the
    /// drift of the event time (in the shopper's own beacon time).
    fn check(&self, inner: &Inner, hit: Option<Hit>, t: i64) -> Option<Resolution> {
        let hit = hit?;
        if hit.slot == COLLISION {
            return None;
        }
        let k = inner.keys.get(hit.slot as usize)?.as_ref()?;
        let bt = (t + k.clock_offset_s).rem_euclid(1i64 << 32) as u32;
        let into_window = i64::from(bt.wrapping_sub(hit.window) as i32);
        let len = 1i64 << k.exponent.min(MAX_EXPONENT);
        let drift = i64::from(self.config.drift_s);
        (into_window >= -drift && into_window < len + drift).then(|| Resolution {
            shopper: k.shopper.clone(),
            window_start: hit.window,
        })
    }

    fn historic_table(&self, t: i64) -> Arc<Table> {
        let hour = t.div_euclid(3600) * 3600;
        let mut cache = self.historic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, table)) = cache.iter().find(|(h, _)| *h == hour) {
            return table.clone();
        }
        let drift = i64::from(self.config.drift_s);
        let keys = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .clone();
        let table = Arc::new(Table::build(&keys, hour - drift, hour + 3600 + drift));
        self.historic_builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if cache.len() == HISTORIC_TABLES {
            cache.pop_front();
        }
        cache.push_back((hour, table.clone()));
        table
    }

    pub fn stats(&self) -> ResolverStats {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        ResolverStats {
            registered: inner.by_shopper.len(),
            table_entries: inner.live.map.len(),
            collisions: inner.live.collisions,
            historic_builds: self
                .historic_builds
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// The EID in a gateway's device id (`eid:<16 hex>`), if it is one.
pub fn parse_device_eid(device: &str) -> Option<Eid> {
    let hex = device.strip_prefix("eid:")?;
    dwell_shared::hex::decode_array::<8>(hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8, exponent: u8, offset: i64) -> RegisteredKey {
        RegisteredKey {
            shopper: Arc::from(format!("s{i}")),
            key: [i; 16],
            exponent,
            clock_offset_s: offset,
        }
    }

    fn eid_at(k: &RegisteredKey, unix_s: i64) -> Eid {
        let bt = (unix_s + k.clock_offset_s).rem_euclid(1 << 32) as u32;
        eid::compute(&k.key, k.exponent, bt)
    }

    const NOW: i64 = 1_767_258_000;

    #[test]
    fn resolves_what_the_spec_computes_and_nothing_else() {
        let keys: Vec<_> = (1..=50).map(|i| key(i, 8 + i % 4, 0)).collect();
        let r = Resolver::new(ResolverConfig::default());
        r.load(keys.clone(), NOW);
        for k in &keys {
            for dt in [-800, -1, 0, 30, 59] {
                let got = r.resolve(&eid_at(k, NOW + dt), (NOW + dt) * 1000).unwrap();
                assert_eq!(got.shopper, k.shopper, "dt {dt}");
            }
        }
        assert_eq!(r.resolve(&[0xab; 8], NOW * 1000), None);
        // The shared brute-force search agrees on every key.
        let plain: Vec<_> = keys.iter().map(|k| (k.key, k.exponent)).collect();
        for (i, k) in keys.iter().enumerate() {
            let e = eid_at(k, NOW);
            assert_eq!(eid::find_key(&plain, &e, NOW as u32, 120), Some(i));
        }
    }

    #[test]
    fn drift_within_the_window_resolves_beyond_it_does_not() {
        let k = key(7, 8, 0); // 256 s windows
        let r = Resolver::new(ResolverConfig {
            drift_s: 100,
            ..ResolverConfig::default()
        });
        r.load(vec![k.clone()], NOW);
        let w = NOW - NOW.rem_euclid(256);
        let e = eid_at(&k, w); // the window [w, w+256)
        assert!(r.resolve(&e, (w - 100) * 1000).is_some());
        assert!(r.resolve(&e, (w + 255 + 100) * 1000).is_some());
        assert!(r.resolve(&e, (w - 101) * 1000).is_none());
        assert!(r.resolve(&e, (w + 256 + 100) * 1000).is_none());
    }

    #[test]
    fn a_phone_clock_offset_and_counter_wrap_resolve() {
        // Beacon time just below 2^32: the counter wraps during the table's range.
        let offset = (1i64 << 32) - NOW - 100;
        let k = key(9, 5, offset);
        let r = Resolver::new(ResolverConfig::default());
        r.load(vec![k.clone()], NOW);
        for dt in [-50, 0, 99, 100, 101, 200] {
            let bt = (NOW + dt + offset).rem_euclid(1 << 32) as u32;
            let e = eid::compute(&k.key, 5, bt);
            assert_eq!(
                r.resolve(&e, (NOW + dt) * 1000).map(|x| x.shopper),
                Some(k.shopper.clone()),
                "dt {dt} bt {bt}"
            );
        }
        // Temporary-key rollover (every 65,536 s): resolve on both sides of it.
        let offset = 65_536 * 1000 - NOW - 10;
        let k = key(3, 4, offset);
        r.register(k.clone());
        for dt in [0, 9, 10, 11, 40] {
            assert!(
                r.resolve(&eid_at(&k, NOW + dt), (NOW + dt) * 1000)
                    .is_some()
            );
        }
    }

    #[test]
    fn opted_out_shoppers_resolve_to_nobody_and_new_ones_at_once() {
        let a = key(1, 10, 0);
        let r = Resolver::new(ResolverConfig::default());
        r.load(vec![a.clone()], NOW);
        let b = key(2, 10, 0);
        assert!(r.resolve(&eid_at(&b, NOW), NOW * 1000).is_none());
        r.register(b.clone());
        assert_eq!(
            r.resolve(&eid_at(&b, NOW), NOW * 1000).unwrap().shopper,
            b.shopper
        );
        assert!(r.remove("s1"));
        assert!(r.resolve(&eid_at(&a, NOW), NOW * 1000).is_none());
        // A rebuild doesn't bring them back.
        r.refresh(NOW + 30);
        assert!(
            r.resolve(&eid_at(&a, NOW + 30), (NOW + 30) * 1000)
                .is_none()
        );
        assert!(
            r.resolve(&eid_at(&b, NOW + 30), (NOW + 30) * 1000)
                .is_some()
        );
    }

    #[test]
    fn old_events_resolve_through_a_table_of_their_hour() {
        let k = key(4, 10, 0);
        let r = Resolver::new(ResolverConfig::default());
        r.load(vec![k.clone()], NOW);
        let day_ago = NOW - 86_400;
        assert_eq!(
            r.resolve(&eid_at(&k, day_ago), day_ago * 1000)
                .unwrap()
                .shopper,
            k.shopper
        );
        assert_eq!(r.stats().historic_builds, 1);
        // Same hour again: cached.
        r.resolve(&eid_at(&k, day_ago + 5), (day_ago + 5) * 1000)
            .unwrap();
        assert_eq!(r.stats().historic_builds, 1);
    }

    #[test]
    fn device_ids_parse() {
        assert_eq!(
            parse_device_eid("eid:0102030405060708"),
            Some([1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(parse_device_eid("eid:01"), None);
        assert_eq!(parse_device_eid("anon:0102030405060708"), None);
    }
}
