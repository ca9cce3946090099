//! Id tables: external string ids to dense `u32` indices and back. The
//! index of a user is its row in the interaction matrix and in user factors;
//! the index of an item is its column everywhere.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Maps string ids to dense indices and back.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    index: HashMap<Box<str>, u32>,
    ids: Vec<Box<str>>,
}

impl Interner {
    /// The index of `id`, assigning the next one when new.
    pub fn intern(&mut self, id: &str) -> Result<u32> {
        if let Some(&i) = self.index.get(id) {
            return Ok(i);
        }
        let i = u32::try_from(self.ids.len())
            .map_err(|_| Error::data_source("more than 4 294 967 295 distinct ids"))?;
        let boxed: Box<str> = id.into();
        self.ids.push(boxed.clone());
        self.index.insert(boxed, i);
        Ok(i)
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
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
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.clone(), i as u32).is_some() {
                return Err(format!("duplicate id {id:?}"));
            }
        }
        Ok(Interner { index, ids })
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
