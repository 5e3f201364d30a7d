//! The tracked devices: a slab indexed by device id, with a hard cap and CLOCK eviction.
//!
//! Memory must stay bounded however many distinct ids the air brings (randomized addresses,
//! salted hashes that change daily, a Wi-Fi storm). Idle devices leave through the tracker's
//! own eviction (after their visit ends, or unseen for the session timeout); this table adds the
//! hard cap: inserting past it evicts one device chosen by CLOCK (second chance), an O(1)
//! amortised approximation of "least recently seen" — every sighting sets the device's
//! `referenced` bit, the hand clears bits as it sweeps, and the first device found with its bit
//! clear goes. It is deterministic for a given input order, needs no per-sighting bookkeeping
//! beyond one bool, and never scans all devices for one insert.

use super::Device;
use std::collections::HashMap;

#[derive(Debug)]
pub(crate) struct DeviceTable {
    slots: Vec<Option<Device>>,
    index: HashMap<Box<str>, u32>,
    free: Vec<u32>,
    hand: usize,
    cap: usize,
}

impl DeviceTable {
    pub fn new(cap: usize) -> DeviceTable {
        DeviceTable {
            slots: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
            hand: 0,
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Device> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Inserts a device not yet in the table. At the cap, first evicts one (returned).
    pub fn insert(&mut self, device: Device) -> (u32, Option<Device>) {
        let evicted = (self.len() >= self.cap).then(|| self.evict_one()).flatten();
        let id: Box<str> = device.key.device.as_str().into();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(device);
                slot
            }
            None => {
                self.slots.push(Some(device));
                // The cap (a usize from config, validated ≤ u32::MAX) bounds the slab.
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(id, slot);
        (slot, evicted)
    }

    pub fn remove(&mut self, slot: u32) -> Option<Device> {
        let device = self.slots.get_mut(slot as usize)?.take()?;
        self.index.remove(device.key.device.as_str());
        self.free.push(slot);
        Some(device)
    }

    /// One past the highest slot, for a sweep by slot number (`tick`), which may remove.
    pub fn slot_count(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> + '_ {
        self.slots.iter().flatten()
    }

    pub fn devices_mut(&mut self) -> impl Iterator<Item = &mut Device> + '_ {
        self.slots.iter_mut().flatten()
    }

    fn evict_one(&mut self) -> Option<Device> {
        if self.slots.is_empty() {
            return None;
        }
        // Two sweeps at most: the first clears every bit it passes.
        for _ in 0..2 * self.slots.len() {
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            if let Some(d) = &mut self.slots[slot] {
                if d.referenced {
                    d.referenced = false;
                } else {
                    return self.remove(slot as u32);
                }
            }
        }
        None
    }
}
