//! Id tables: external string ids to dense `u32` indices and back. The
//! index of a user is its row in the interaction matrix and in user factors;
//! the index of an item is its column everywhere.

use crate::error::{Error, Result};

/// Maps string ids to dense indices (in order of first appearance) and back.
///
/// The ids live back to back in one UTF-8 buffer with their end offsets
/// beside it, not one allocation per id: a million ids cost their bytes plus
/// 4 bytes each, plus the lookup slots (8–16 bytes each). The same table
/// serves ingestion (growing) and serving (built once from an artifact's id
/// section, which has this exact layout).
#[derive(Debug, Default, Clone)]
pub struct Interner {
    /// Every id's bytes, in index order.
    text: String,
    /// `ends[i]`: where id `i` ends in `text` (it starts where `i - 1` ends).
    ends: Vec<u32>,
    /// Open addressing, linear probing: `index + 1`, 0 = empty. The length
    /// is a power of two, at least twice the number of ids.
    slots: Vec<u32>,
}

/// A fast string hash (word at a time, then the murmur3 finaliser so the
/// low bits used for the slot depend on every byte). Not keyed: the data
/// comes from the operator's own source or an authenticated artifact, and a
/// bad distribution would only slow ingestion.
fn hash_id(bytes: &[u8]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ bytes.len() as u64;
    let (words, rest) = bytes.as_chunks::<8>();
    for w in words {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(*w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(0x517c_c1b7_2722_0a95);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Slots for `n` ids: a power of two, at least twice `n`.
fn slot_count(n: usize) -> usize {
    (n.saturating_mul(2)).next_power_of_two().max(1024)
}

impl Interner {
    /// Id `i` (index order). Panics when `i` is out of range, like slice
    /// indexing: indices come from this table or a model checked against it.
    pub fn id(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The ids in index order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(|i| self.id(i))
    }

    /// Every id's bytes back to back, in index order.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where each id ends in [`Interner::text`].
    pub fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// The slot holding `id`, or the empty slot where it would go.
    fn probe(&self, id: &str, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut s = hash as usize & mask;
        loop {
            match self.slots[s] {
                0 => return s,
                i if self.id(i as usize - 1) == id => return s,
                _ => s = (s + 1) & mask,
            }
        }
    }

    /// Rebuild the slots for `capacity` ids. `Err(i)` when id `i` repeats
    /// an earlier one.
    fn index(&mut self, capacity: usize) -> std::result::Result<(), usize> {
        /// Ids hashed (and their slots prefetched) ahead of their insert:
        /// the slots are a table of megabytes read at random, and waiting
        /// on each slot's cache miss was most of the time.
        const AHEAD: usize = 16;
        self.slots = vec![0; slot_count(capacity)];
        let (n, mask) = (self.ends.len(), self.slots.len() - 1);
        let mut ahead = [0u64; AHEAD];
        for (i, h) in ahead.iter_mut().enumerate().take(n) {
            *h = hash_id(self.id(i).as_bytes());
            recotem_numerics::prefetch(&self.slots, *h as usize & mask);
        }
        for i in 0..n {
            let hash = ahead[i % AHEAD];
            if i + AHEAD < n {
                let next = hash_id(self.id(i + AHEAD).as_bytes());
                ahead[i % AHEAD] = next;
                recotem_numerics::prefetch(&self.slots, next as usize & mask);
            }
            let s = self.probe(self.id(i), hash);
            if self.slots[s] != 0 {
                return Err(i);
            }
            self.slots[s] = i as u32 + 1;
        }
        Ok(())
    }

    /// The index of `id`, assigning the next one when new.
    pub fn intern(&mut self, id: &str) -> Result<u32> {
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            // Ids were unique when added; re-indexing cannot find a repeat.
            let _ = self.index((self.slots.len()).max(512));
        }
        let s = self.probe(id, hash_id(id.as_bytes()));
        if self.slots[s] != 0 {
            return Ok(self.slots[s] - 1);
        }
        // u32::MAX is the null marker of the row columns.
        let i = u32::try_from(self.ends.len())
            .ok()
            .filter(|i| *i < u32::MAX - 1)
            .ok_or_else(|| Error::data_source("more than 4 294 967 293 distinct ids"))?;
        let end = u32::try_from(self.text.len() + id.len())
            .map_err(|_| Error::data_source("the distinct ids take more than 4 GiB; use shorter ids"))?;
        self.text.push_str(id);
        self.ends.push(end);
        self.slots[s] = i + 1;
        Ok(i)
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        match self.slots[self.probe(id, hash_id(id.as_bytes()))] {
            0 => None,
            i => Some(i - 1),
        }
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Build from ids in index order (rejects duplicates).
    pub fn from_ids<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> std::result::Result<Self, String> {
        let mut text = String::new();
        let mut ends = Vec::new();
        for id in ids {
            text.push_str(id.as_ref());
            ends.push(u32::try_from(text.len()).map_err(|_| "the ids take more than 4 GiB".to_string())?);
        }
        Self::from_parts(text, ends)
    }

    /// Build from the ids' bytes back to back and where each ends (the
    /// layout of [`Interner::text`] and [`Interner::ends`]). Rejects ends
    /// that decrease, pass the text or split a character, and duplicates.
    pub fn from_parts(text: String, ends: Vec<u32>) -> std::result::Result<Self, String> {
        if u32::try_from(ends.len()).map_or(true, |n| n >= u32::MAX - 1) {
            return Err("more than 4 294 967 293 ids".into());
        }
        let mut prev = 0u32;
        for &end in &ends {
            if end < prev || !text.is_char_boundary(end as usize) {
                return Err("id offsets are not increasing character boundaries".into());
            }
            prev = end;
        }
        if prev as usize != text.len() {
            return Err("id offsets do not end at the end of the ids".into());
        }
        let mut table = Interner { text, ends, slots: Vec::new() };
        if let Err(i) = table.index(table.ends.len()) {
            return Err(format!("duplicate id {:?}", table.id(i)));
        }
        Ok(table)
    }
}

/// Equal when the same ids are in the same order.
impl PartialEq for Interner {
    fn eq(&self, other: &Interner) -> bool {
        self.ends == other.ends && self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_in_first_seen_order_and_refuses_duplicates() {
        let mut t = Interner::default();
        assert_eq!(t.intern("b").unwrap(), 0);
        assert_eq!(t.intern("a").unwrap(), 1);
        assert_eq!(t.intern("b").unwrap(), 0);
        assert_eq!(t.get("a"), Some(1));
        assert_eq!(t.iter().collect::<Vec<_>>(), ["b", "a"]);
        assert!(Interner::from_ids(["x", "x"]).is_err());
    }

    #[test]
    fn ids_share_one_buffer_and_survive_growth() {
        let mut t = Interner::default();
        let ids: Vec<String> = (0..5_000).map(|i| format!("id-{i}-ü")).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.intern(id).unwrap(), i as u32);
        }
        assert!(t.slots.len() >= 2 * t.len() && t.slots.len().is_power_of_two());
        assert_eq!(t.text().len(), ids.iter().map(String::len).sum::<usize>());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!((t.get(id), t.id(i)), (Some(i as u32), id.as_str()));
        }
        assert_eq!(t.get("id-5000-ü"), None);
        assert_eq!(t.get(""), None);
        let rebuilt = Interner::from_parts(t.text().to_owned(), t.ends().to_vec()).unwrap();
        assert_eq!(rebuilt, t);
        assert_eq!(rebuilt.get("id-4999-ü"), Some(4999));
        // The empty id is an id like any other.
        let e = Interner::from_ids(["", "a"]).unwrap();
        assert_eq!((e.get(""), e.get("a"), e.id(0)), (Some(0), Some(1), ""));
    }

    #[test]
    fn from_parts_refuses_bad_offsets_and_duplicates() {
        let bad = |text: &str, ends: &[u32]| Interner::from_parts(text.into(), ends.to_vec()).unwrap_err();
        assert!(bad("ab", &[2, 1]).contains("increasing"));
        assert!(bad("ab", &[1]).contains("end"));
        assert!(bad("ab", &[3]).contains("increasing"));
        assert!(bad("ü", &[1, 2]).contains("character"));
        assert!(bad("abab", &[2, 4]).contains("duplicate id \"ab\""));
    }

    #[test]
    fn id_hashes_spread_over_the_low_bits() {
        // Ids that differ only after the first word must not share slots.
        let buckets: std::collections::HashSet<u64> =
            (0..10_000).map(|i| hash_id(format!("item-{i:07}").as_bytes()) & 0xffff).collect();
        assert!(buckets.len() > 8_500, "only {} of 10000 distinct low-bit buckets", buckets.len());
    }
}
