//! The hash for table keys: two rounds of a seeded folded multiply over the one-word key.
//!
//! Why not std's SipHash: it was two thirds of a lookup in a 1k-entry table (measured with
//! papaya 0.2.5: ~65 ns/lookup with SipHash against ~20 ns with this). Why not a plain
//! unseeded multiply (FxHash): source MACs are chosen by whoever sends frames, and an
//! unseeded hash lets them pick MACs that collide offline and turn every probe into a
//! long one. Here both seeds come from std's `RandomState` (seeded by the OS) per table,
//! so colliding keys cannot be computed without them; and the learned-entry limit bounds
//! the table whatever happens. This is the construction `foldhash` uses for small
//! integers, in a few lines rather than a dependency.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`KeyHash`]es with this table's secret seeds.
#[derive(Clone)]
pub(crate) struct KeyHasher {
    seed: u64,
    mul: u64,
}

impl KeyHasher {
    pub fn new() -> KeyHasher {
        let rs = RandomState::new();
        KeyHasher {
            seed: rs.hash_one(0_u64),
            // Mixed with a fixed odd constant so that no seed draw can make it trivial.
            mul: (rs.hash_one(1_u64) ^ 0x9e37_79b9_7f4a_7c15) | 1,
        }
    }
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seeds are secret: printing them would hand out the collisions.
        f.debug_struct("KeyHasher").finish_non_exhaustive()
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = KeyHash;

    fn build_hasher(&self) -> KeyHash {
        KeyHash {
            acc: self.seed,
            mul: self.mul,
        }
    }
}

/// The full 128-bit product of `a` and `b`, its halves XORed: every output bit depends on
/// every input bit of both.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

pub(crate) struct KeyHash {
    acc: u64,
    mul: u64,
}

impl Hasher for KeyHash {
    fn write_u64(&mut self, x: u64) {
        self.acc = folded_multiply(self.acc ^ x, self.mul);
    }

    /// Keys hash through `write_u64`; this is only here to be a complete `Hasher`.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        // A second round, so that the low bits (papaya's probe start) and the top seven
        // (its tag byte) both depend on all of the key.
        folded_multiply(self.acc ^ self.mul.rotate_left(32), self.mul)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_spread() {
        let h = KeyHasher::new();
        assert_eq!(h.hash_one(42u64), h.hash_one(42u64));
        // Keys one bit apart (consecutive MACs) must land on distinct probe starts and,
        // mostly, distinct tag bytes.
        let hashes: Vec<u64> = (0..4096u64).map(|k| h.hash_one(k)).collect();
        let starts: HashSet<u64> = hashes.iter().map(|h| h & 0xffff).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(
            starts.len() > 3500,
            "{} distinct probe starts",
            starts.len()
        );
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn tables_get_different_seeds() {
        let (a, b) = (KeyHasher::new(), KeyHasher::new());
        assert_ne!(a.hash_one(1u64), b.hash_one(1u64));
    }
}
