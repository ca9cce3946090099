//! Id tables: external string ids to dense `u32` indices and back. The
//! index of a user is its row in the interaction matrix and in user factors;
//! the index of an item is its column everywhere.

use crate::error::{Error, Result};

/// Maps string ids to dense indices (in order of first appearance) and back.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: Vec<Box<str>>,
    /// Open addressing, linear probing: `index + 1`, 0 = empty. The length
    /// is a power of two, at least twice the number of ids.
    slots: Vec<u32>,
}

/// A fast string hash (word at a time, then the murmur3 finaliser so the
/// low bits used for the slot depend on every byte). Not keyed: the data
/// comes from the operator's own source, and a bad distribution would only
/// slow ingestion.
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

impl Interner {
    /// The slot holding `id`, or the empty slot where it would go.
    fn probe(&self, id: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut s = hash_id(id.as_bytes()) as usize & mask;
        loop {
            match self.slots[s] {
                0 => return s,
                i if *self.ids[i as usize - 1] == *id => return s,
                _ => s = (s + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(1024);
        self.slots = vec![0; len];
        let mask = len - 1;
        for (i, id) in self.ids.iter().enumerate() {
            let mut s = hash_id(id.as_bytes()) as usize & mask;
            while self.slots[s] != 0 {
                s = (s + 1) & mask;
            }
            self.slots[s] = i as u32 + 1;
        }
    }

    /// The index of `id`, assigning the next one when new.
    pub fn intern(&mut self, id: &str) -> Result<u32> {
        if (self.ids.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let s = self.probe(id);
        if self.slots[s] != 0 {
            return Ok(self.slots[s] - 1);
        }
        // u32::MAX is the null marker of the row columns.
        let i = u32::try_from(self.ids.len())
            .ok()
            .filter(|i| *i < u32::MAX - 1)
            .ok_or_else(|| Error::data_source("more than 4 294 967 293 distinct ids"))?;
        self.ids.push(id.into());
        self.slots[s] = i + 1;
        Ok(i)
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        match self.slots[self.probe(id)] {
            0 => None,
            i => Some(i - 1),
        }
    }

    /// The ids in index order, by value.
    pub fn into_ids(self) -> Vec<Box<str>> {
        self.ids
    }

    /// The ids in index order.
    pub fn ids(&self) -> &[Box<str>] {
        &self.ids
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Build from ids in index order (rejects duplicates).
    pub fn from_ids(ids: Vec<Box<str>>) -> std::result::Result<Self, String> {
        let mut interner = Interner { ids: Vec::with_capacity(ids.len()), slots: Vec::new() };
        for id in ids {
            let before = interner.len();
            interner.intern(&id).map_err(|e| e.to_string())?;
            if interner.len() == before {
                return Err(format!("duplicate id {id:?}"));
            }
        }
        Ok(interner)
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
        assert_eq!(t.ids(), &["b".into(), "a".into()] as &[Box<str>]);
        assert!(Interner::from_ids(vec!["x".into(), "x".into()]).is_err());
    }
}
