//! Sighting aggregation for one reporting window, in a fixed-size table (no allocator).
//!
//! Every advertisement the controller reports is reduced to an [`Identity`] and folded into a row:
//! count, RSSI min/max and the sum for the mean. The identity is the beacon's own id when the
//! advertisement carries one — Eddystone-EID first (the consented tier), then iBeacon, AltBeacon,
//! Eddystone-UID — and otherwise a keyed hash of the address: AES-128 under the node's salt over
//! address type and address, first 8 bytes. The raw address never enters the table, so it cannot
//! leave the node in a report; the salt is the board's to rotate (from its RNG, at boot and daily,
//! like the gateway's), which unlinks hashes across rotations.
//!
//! **When the table is full**, new identities are dropped and counted in [`Table::dropped`];
//! identities already in the table keep being updated. Keeping the devices that were seen first
//! means a crowd arriving late in a window cannot evict the beacons that were there all along,
//! and the count tells the gateway how much it missed. The table is cleared at each window end.

use dwell_shared::anon::AnonKey;
use dwell_shared::frame::{self, Frame};
use dwell_shared::hci::AdvReport;
use dwell_shared::node_report::{Identity, Sighting};

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub identity: Identity,
    /// Advertisements heard.
    pub count: u32,
    /// Advertisements that carried an RSSI.
    pub rssi_n: u32,
    pub rssi_min: i8,
    pub rssi_max: i8,
    pub rssi_sum: i32,
}

impl Entry {
    /// The row as a report sighting: counts saturate, the mean rounds toward negative infinity,
    /// and a row with no RSSI at all reports 127 ("not available", as HCI does).
    pub fn sighting(&self) -> Sighting {
        let (min, max, mean) = if self.rssi_n == 0 {
            (127, 127, 127)
        } else {
            let mean = self.rssi_sum.div_euclid(self.rssi_n as i32);
            (self.rssi_min, self.rssi_max, mean as i8)
        };
        Sighting {
            identity: self.identity,
            count: u16::try_from(self.count).unwrap_or(u16::MAX),
            rssi_min: min,
            rssi_max: max,
            rssi_mean: mean,
        }
    }
}

/// What happened to one advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new row was started.
    New,
    /// An existing row was updated.
    Updated,
    /// The table was full and the identity new: dropped and counted.
    Dropped,
}

/// The identity an advertisement is counted under; see the module docs for the order.
pub fn identity_of(report: &AdvReport<'_>, salt: &AnonKey) -> Identity {
    let mut best: Option<(u8, Identity)> = None;
    for f in frame::frames(report.data) {
        let ranked = match f {
            Frame::EddystoneEid(e) => (0, Identity::Eid(e.eid)),
            Frame::IBeacon(b) => (
                1,
                Identity::IBeacon {
                    uuid: *b.uuid.as_bytes(),
                    major: b.major,
                    minor: b.minor,
                },
            ),
            Frame::AltBeacon(b) => (
                2,
                Identity::AltBeacon {
                    id1: *b.id1.as_bytes(),
                    id2: b.id2,
                    id3: b.id3,
                },
            ),
            Frame::EddystoneUid(u) => (
                3,
                Identity::EddystoneUid {
                    namespace: u.namespace,
                    instance: u.instance,
                },
            ),
            // URL and TLM frames name no one.
            Frame::EddystoneUrl(_) | Frame::EddystoneTlm(_) => continue,
        };
        if best.is_none_or(|(rank, _)| ranked.0 < rank) {
            best = Some(ranked);
        }
    }
    match best {
        Some((_, id)) => id,
        None => Identity::AddrHash(salt.hash(report.addr_type, &report.addr)),
    }
}

/// The per-window table with room for `N` identities.
pub struct Table<const N: usize> {
    rows: heapless::Vec<Entry, N>,
    dropped: u32,
    salt: AnonKey,
}

impl<const N: usize> core::fmt::Debug for Table<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The salt stays out of logs.
        f.debug_struct("Table")
            .field("rows", &self.rows)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Table<N> {
    pub fn new(salt: [u8; 16]) -> Self {
        Table {
            rows: heapless::Vec::new(),
            dropped: 0,
            salt: AnonKey::new(&salt),
        }
    }

    /// Replaces the salt (the board rotates it); address hashes made after this differ.
    pub fn set_salt(&mut self, salt: [u8; 16]) {
        self.salt = AnonKey::new(&salt);
    }

    /// Folds one advertisement into the table.
    pub fn record(&mut self, report: &AdvReport<'_>) -> Recorded {
        let identity = identity_of(report, &self.salt);
        self.record_identity(identity, report.rssi)
    }

    /// Folds one sighting of a known identity into the table.
    pub fn record_identity(&mut self, identity: Identity, rssi: Option<i8>) -> Recorded {
        let fold = |e: &mut Entry| {
            e.count = e.count.saturating_add(1);
            if let Some(r) = rssi {
                if e.rssi_n == 0 {
                    e.rssi_min = r;
                    e.rssi_max = r;
                } else {
                    e.rssi_min = e.rssi_min.min(r);
                    e.rssi_max = e.rssi_max.max(r);
                }
                e.rssi_n += 1;
                e.rssi_sum = e.rssi_sum.saturating_add(i32::from(r));
            }
        };
        if let Some(e) = self.rows.iter_mut().find(|e| e.identity == identity) {
            fold(e);
            return Recorded::Updated;
        }
        let mut e = Entry {
            identity,
            count: 0,
            rssi_n: 0,
            rssi_min: 0,
            rssi_max: 0,
            rssi_sum: 0,
        };
        fold(&mut e);
        match self.rows.push(e) {
            Ok(()) => Recorded::New,
            Err(_) => {
                self.dropped = self.dropped.saturating_add(1);
                Recorded::Dropped
            }
        }
    }

    /// Rows in order of first sighting.
    pub fn entries(&self) -> &[Entry] {
        &self.rows
    }

    /// Sightings of new identities dropped because the table was full, this window.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Starts a new window.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::hci::ReportKind;

    fn report(addr: [u8; 6], data: &[u8], rssi: Option<i8>) -> AdvReport<'_> {
        AdvReport {
            kind: ReportKind::Legacy,
            event_type: 3,
            addr_type: 1,
            addr,
            rssi,
            tx_power: None,
            data,
        }
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        dwell_shared::hex::decode_array(s).unwrap()
    }

    #[test]
    fn eid_wins_over_ibeacon_in_the_same_advertisement() {
        // iBeacon manufacturer data followed by an Eddystone-EID service data structure.
        let data: [u8; 41] = hex("1aff4c0002154142434445464748494041424344454600010002f8\
             0d16aafe30e34549445f74657374");
        let salt = AnonKey::new(&[0u8; 16]);
        assert_eq!(
            identity_of(&report([1; 6], &data, None), &salt),
            Identity::Eid(*b"EID_test")
        );
    }

    #[test]
    fn rssi_statistics_and_missing_rssi() {
        let mut t: Table<4> = Table::new([0; 16]);
        for r in [Some(-61), None, Some(-70), Some(-80)] {
            t.record(&report([9; 6], &[], r));
        }
        let s = t.entries()[0].sighting();
        // mean of -61, -70, -80 = -70.33 → -71 (toward negative infinity)
        assert_eq!(
            (s.count, s.rssi_min, s.rssi_max, s.rssi_mean),
            (4, -80, -61, -71)
        );
        t.clear();
        t.record(&report([9; 6], &[], None));
        let s = t.entries()[0].sighting();
        assert_eq!((s.rssi_min, s.rssi_max, s.rssi_mean), (127, 127, 127));
    }

    #[test]
    fn full_table_keeps_old_rows_and_counts_new_ones() {
        let mut t: Table<2> = Table::new([0; 16]);
        assert_eq!(t.record(&report([1; 6], &[], Some(-50))), Recorded::New);
        assert_eq!(t.record(&report([2; 6], &[], Some(-50))), Recorded::New);
        assert_eq!(t.record(&report([3; 6], &[], Some(-50))), Recorded::Dropped);
        assert_eq!(t.record(&report([1; 6], &[], Some(-40))), Recorded::Updated);
        assert_eq!((t.len(), t.dropped()), (2, 1));
        t.clear();
        assert_eq!((t.len(), t.dropped()), (0, 0));
    }
}
