//! Reading a recipe's source into the interaction table: the component
//! parses on one thread while the host interns the previous batch on
//! another (and the user and item columns of a batch on two), so the read
//! runs at the speed of the slower of the two, not of their sum.

use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use crate::data::interactions::Interactions;
use crate::plugin::grants;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::plugin::engine::Runtime;
use crate::plugin::source::SourceComponent;
use crate::recipe::model::{Recipe, SplitScheme};

/// Batches parsed ahead of the interning thread.
const BATCHES_IN_FLIGHT: usize = 2;

/// Open the recipe's input for `source` (if it asks for one), read every
/// batch into an interaction table, with the `<type>_source_fetch_start`
/// and `_fetch_done` events. Columns read: the schema's user and item
/// columns, its time column when it names one, and a fixed split's part
/// column.
pub fn read_source(runtime: &Runtime, source: &SourceComponent, recipe: &Recipe, started: Instant) -> Result<Interactions> {
    let prefix = format!("{}_source", source.type_name());
    if let (true, Some(raw)) = (source.declares_input(), recipe.source_path()) {
        let scheme = crate::recipe::paths::split_scheme(raw).scheme.unwrap_or_else(|| "file".into());
        Event::info(format!("{prefix}_fetch_start")).field("path", crate::plugin::fetch::shown(raw)).field("scheme", scheme).emit();
    }
    let input = grants::grant_input(source, grants::Request::source(recipe), true)?;
    let (bytes, verified) = input.as_ref().map_or((0, false), |g| (g.bytes, g.sha256_verified));
    let schema = &recipe.schema;
    let mut columns = vec![schema.user_column.clone(), schema.item_column.clone()];
    columns.extend(schema.time_column.iter().cloned());
    let split = &recipe.training.split;
    let part_column = split.column.clone().filter(|_| split.scheme == SplitScheme::Fixed);
    columns.extend(part_column.iter().cloned());
    let config = serde_json::to_string(&recipe.source).map_err(|e| Error::internal(e.to_string()))?;
    let mut session = source.open(runtime, &config, input, &columns)?;
    if let Some(secs) = recipe.training.timeout_seconds {
        // The whole run's budget covers the read as well.
        let budget = Duration::from_secs(secs);
        session.read_deadline(started + budget, "training.timeout_seconds", budget);
    }
    let mut table = Interactions::with_time(schema.time_column.clone(), schema.time_unit);
    if let Some(column) = part_column {
        table = table.with_parts(column, split.labels.clone().unwrap_or_default());
    }

    let (tx, rx) = sync_channel(BATCHES_IN_FLIGHT);
    let (read, consumed) = std::thread::scope(|s| {
        let reader = s.spawn(move || -> Result<()> {
            while let Some(batch) = session.next_batch()? {
                if tx.send(batch).is_err() {
                    break; // the consumer failed; its error is the one to report
                }
            }
            Ok(())
        });
        let consumed = rx
            .iter()
            .try_for_each(|batch| table.push_batch(&batch, &schema.user_column, &schema.item_column));
        drop(rx);
        let read = reader.join().unwrap_or_else(|_| Err(Error::internal("the source reading thread panicked")));
        (read, consumed)
    });
    // A fault in the data the host already received came first.
    consumed?;
    read?;

    Event::info(format!("{prefix}_fetch_done"))
        .field("rows", table.n_rows())
        .field("bytes", bytes)
        .field("sha256_verified", verified)
        .field("columns", columns)
        .emit();
    if table.n_rows() == 0 {
        return Err(Error::data_source("the source returned no rows"));
    }
    Ok(table)
}
