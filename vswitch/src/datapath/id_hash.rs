//! Hash maps for the packet path's small identifier keys (port, network, VNI): the
//! workers look several of them up for every frame, and the standard library's SipHash
//! (built to resist collision attacks on keys an attacker picks) cost more than the rest
//! of the lookup. These keys are chosen by the control plane, never by packets, so a
//! multiply-and-rotate hash (the idea of rustc's FxHash) is enough. Never use it for a
//! map keyed by anything a packet carries (addresses, MACs, flows).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by a control-plane identifier.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An odd constant with well-spread bits (2^64 / golden ratio).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// See the module doc.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let (words, tail) = bytes.as_chunks::<8>();
        for w in words {
            self.mix(u64::from_le_bytes(*w));
        }
        for &b in tail {
            self.mix(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread_over_buckets_and_maps_work() {
        let b = BuildHasherDefault::<IdHasher>::default();
        // The low bits pick hashbrown's bucket, the top 7 its tag: both must differ
        // between neighbouring ids.
        let low: std::collections::HashSet<u64> = (0..64u32).map(|i| b.hash_one(i) & 63).collect();
        assert!(low.len() > 32, "low bits: {}", low.len());
        let top: std::collections::HashSet<u64> = (0..64u32).map(|i| b.hash_one(i) >> 57).collect();
        assert!(top.len() > 32, "top bits: {}", top.len());
        let mut m: IdMap<u32, u32> = IdMap::default();
        for i in 0..1000 {
            m.insert(i, i * 2);
        }
        assert!((0..1000).all(|i| m.get(&i) == Some(&(i * 2))));
        assert_eq!(m.get(&1000), None);
    }
}
