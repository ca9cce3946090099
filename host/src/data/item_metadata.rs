//! Item metadata (`item_metadata` in the recipe), read at train time through
//! a data-source component and stored in the signed artifact, so serving
//! needs no access to the data store.
//!
//! Rules (META-02): the id column must exist; null and blank ids are
//! dropped; the first row of an id wins; only the listed `fields` are kept,
//! in order; a field missing from the data is an error, or a column of nulls
//! with `on_field_missing: null`. Only items of the trained model are kept:
//! nothing else can be recommended.

use crate::artifact::payload::ItemMetadata;
use crate::data::interactions::{check_batch, column_names, find_column, for_each_text};
use crate::data::Interner;
use crate::plugin::grants;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::plugin::Registry;
use crate::plugin::source::SourceComponent;
use crate::plugin::bindings::source::recotem::plugin::types::Batch;
use crate::plugin::engine::Runtime;
use crate::recipe::model::{self, OnFieldMissing};

/// The source component `item_metadata.type` names: any registered one.
pub fn component<'r>(registry: &'r Registry, meta: &model::ItemMetadata) -> Result<&'r SourceComponent> {
    registry.find_source(&meta.kind).ok_or_else(|| {
        Error::data_source(format!(
            "item_metadata.type: no data-source component called {:?} is registered ({}); \
             use one of those or install its component in the plugin directory",
            meta.kind,
            registry.source_types().join(", ")
        ))
    })
}

/// Read the metadata of `items` as `meta` describes, through `source`.
pub fn read(runtime: &Runtime, source: &SourceComponent, meta: &model::ItemMetadata, items: &Interner) -> Result<ItemMetadata> {
    let config = meta.component_config().to_string();
    // `pinned`: verify the sha256 pin. Only the opens whose rows are read
    // need it; header probes skip re-hashing the whole file.
    let request = grants::Request { block: grants::Block::ItemMetadata, path: Some(&meta.path), sha256: meta.sha256.as_deref() };
    // An http(s) file is downloaded once, however many opens follow.
    let fetched = grants::prefetch(source, request)?;
    let open = |columns: &[String], pinned: bool| {
        let input = match &fetched {
            Some(fetched) => Some(fetched.grant()?),
            None => grants::grant_input(source, request, pinned)?,
        };
        source.open(runtime, &config, input, columns).map_err(|e| e.context("item_metadata"))
    };

    // Which listed fields the data has: all of them, or (with
    // `on_field_missing: null`) those a one-column open accepts.
    let mut wanted = vec![meta.item_id_column.clone()];
    wanted.extend(meta.fields.iter().cloned());
    let mut session = match open(&wanted, true) {
        Ok(session) => session,
        Err(error) if meta.on_field_missing == OnFieldMissing::Null => {
            open(std::slice::from_ref(&meta.item_id_column), false)?;
            let mut present = vec![meta.item_id_column.clone()];
            for field in &meta.fields {
                if open(&[meta.item_id_column.clone(), field.clone()], false).is_ok() {
                    present.push(field.clone());
                } else {
                    Event::warn("metadata_field_missing_filled_null").field("field", field.as_str()).emit();
                }
            }
            if present.len() == wanted.len() {
                return Err(error);
            }
            open(&present, true)?
        }
        Err(error) => return Err(error),
    };

    let mut table = Table::new(meta, items);
    while let Some(batch) = session.next_batch()? {
        table.push(&batch)?;
    }
    Ok(table.finish())
}

/// Metadata being collected: one column per field, one slot per model item.
struct Table<'a> {
    meta: &'a model::ItemMetadata,
    items: &'a Interner,
    seen: Vec<bool>,
    columns: Vec<Vec<Option<Box<str>>>>,
    null_ids: u64,
    duplicates: u64,
    rows: u64,
}

impl<'a> Table<'a> {
    fn new(meta: &'a model::ItemMetadata, items: &'a Interner) -> Self {
        Table {
            meta,
            items,
            seen: vec![false; items.len()],
            columns: vec![vec![None; items.len()]; meta.fields.len()],
            null_ids: 0,
            duplicates: 0,
            rows: 0,
        }
    }

    fn push(&mut self, batch: &Batch) -> Result<()> {
        let rows = check_batch(batch)?;
        let id_column = find_column(batch, &self.meta.item_id_column).ok_or_else(|| {
            Error::data_source(format!(
                "item_metadata.item_id_column: column {:?} is missing from the metadata; it has: {}",
                self.meta.item_id_column,
                column_names(batch)
            ))
        })?;
        // Row → model item (None: blank id or an item the model does not know).
        let mut slots: Vec<Option<usize>> = Vec::with_capacity(rows);
        for_each_text(id_column, rows, |text| {
            let slot = match text.map(str::trim).filter(|t| !t.is_empty()) {
                None => {
                    self.null_ids += 1;
                    None
                }
                Some(id) => match self.items.get(id) {
                    Some(item) if self.seen[item as usize] => {
                        self.duplicates += 1;
                        None
                    }
                    Some(item) => {
                        self.seen[item as usize] = true;
                        Some(item as usize)
                    }
                    None => None,
                },
            };
            slots.push(slot);
            Ok(())
        })?;
        for (field, column) in self.meta.fields.iter().zip(self.columns.iter_mut()) {
            // A field absent here was found missing (on_field_missing: null).
            let Some(values) = find_column(batch, field) else { continue };
            let mut row = 0;
            for_each_text(values, rows, |text| {
                if let Some(item) = slots[row] {
                    column[item] = text.map(Box::from);
                }
                row += 1;
                Ok(())
            })?;
        }
        self.rows += rows as u64;
        Ok(())
    }

    fn finish(self) -> ItemMetadata {
        if self.null_ids > 0 {
            Event::warn("metadata_null_item_ids_dropped").field("count", self.null_ids).emit();
        }
        if self.duplicates > 0 {
            Event::warn("metadata_duplicate_item_ids_dropped").field("count", self.duplicates).emit();
        }
        let matched = self.seen.iter().filter(|s| **s).count();
        Event::info("metadata_loaded")
            .field("rows", self.rows)
            .field("fields", self.meta.fields.clone())
            .field("n_items", self.items.len())
            .field("n_items_with_metadata", matched)
            .emit();
        ItemMetadata { fields: self.meta.fields.iter().map(|f| f.as_str().into()).collect(), columns: self.columns }
    }
}
