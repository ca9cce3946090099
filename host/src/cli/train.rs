//! `recotem train`.

use serde_json::Value;
use time::OffsetDateTime;

use super::TrainArgs;
use crate::artifact::keys::SigningKey;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::recipe;
use crate::train::{RunFacts, TrainOptions, lock, pipeline};

pub(super) fn run(args: TrainArgs) -> u8 {
    // SOURCE_DATE_EPOCH pins trained_at, so a rerun yields the same bytes.
    let (trained_at, epoch_error) = match crate::settings::get().trained_at() {
        Ok(t) => (t, None),
        Err(e) => (crate::util::rfc3339_seconds(OffsetDateTime::now_utc()), Some(e)),
    };
    let mut name = args.recipe.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut run_id = args.run_id.clone().unwrap_or_default();
    let mut facts = RunFacts::default();
    // SIGINT/SIGTERM cancel the run politely (see `plugin::cancel`).
    if let Err(e) = crate::plugin::cancel::install_signal_handlers() {
        Event::warn("signal_handlers_unavailable").field("error", e.to_string()).emit();
    }
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Option<pipeline::TrainSummary>> {
        if !args.recipe.is_file() {
            return Err(Error::recipe(format!(
                "recipe {}: no such file (give the path of a recipe YAML file)",
                args.recipe.display()
            )));
        }
        if let Some(e) = epoch_error {
            return Err(e);
        }
        let wait = lock::Wait::from_seconds(args.lock_timeout)?;
        let overrides = recipe::env::parse_overrides(&args.env_var)?;
        let (runtime, registry, catalog) = super::components(args.plugin_dir.as_deref())?;
        let loaded =
            recipe::load_file(&args.recipe, &recipe::LoadOptions { catalog: &catalog, env_overrides: &overrides })?;
        name = loaded.recipe.name.clone();
        run_id = match &args.run_id {
            Some(id) => {
                check_run_id(id)?;
                id.clone()
            }
            None => crate::util::random_hex(6)?,
        };
        let key = if args.dev.check()? {
            let key = SigningKey::dev();
            Event::warn("dev_allow_unsigned_active").field("kid", key.kid.as_str()).emit();
            crate::artifact::KeyRing::single(key.clone()).log_built();
            key
        } else {
            pipeline::signing_key()?
        };
        // The per-recipe lock, held until the run ends (TRN-01: after the
        // key ring, before any data is read).
        let _lock = if args.no_lock {
            None
        } else {
            match lock::acquire(&loaded.recipe.output.path, &name, &run_id, wait, args.fail_on_busy)? {
                Some(held) => Some(held),
                None => return Ok(None),
            }
        };
        let options = TrainOptions {
            run_id: run_id.clone(),
            trained_at: trained_at.clone(),
            quiet: args.quiet,
            verbose: args.verbose,
            key,
        };
        pipeline::run(&runtime, &registry, &loaded, &options, &mut facts).map(Some)
    }));
    // A panic is a bug: it still ends in one train_error (exit 1).
    let result = attempt.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Error::internal(format!("the run panicked: {}", crate::plugin::limits::truncate(what, 1024))))
    });
    match result {
        // Skipped: another process holds the lock (the event is logged).
        Ok(None) => 0,
        Ok(Some(summary)) => {
            let (n_rows, n_users, n_items) = facts.stats.unwrap_or_default();
            Event::info("train_done")
                .field("name", name)
                .field("run_id", run_id)
                .field("exit_code", 0)
                .field("artifact", summary.artifact.display().to_string())
                .field("best_class", summary.best_class)
                .field("best_score", summary.best_score)
                .field("trials", summary.trials)
                .field("n_orphaned", 0)
                .field("trained_at", trained_at)
                .field("kid", facts.kid)
                .field("recipe_hash", facts.recipe_hash)
                .field("n_rows", n_rows)
                .field("n_users", n_users)
                .field("n_items", n_items)
                .emit();
            println!("{}", summary.artifact.display());
            0
        }
        Err(error) => {
            let mut event = Event::error("train_error")
                .field("code", error.code())
                .field("name", name)
                .field("run_id", run_id)
                .field("exit_code", error.exit_code())
                .field("error", error.to_string())
                .field("trained_at", trained_at);
            if let Some(kid) = facts.kid {
                event = event.field("kid", kid);
            }
            if let Some(hash) = facts.recipe_hash {
                event = event.field("recipe_hash", hash);
            }
            if let Some(c) = error.counts() {
                event = event
                    .field("n_rows", c.n_rows)
                    .field("n_users", c.n_users)
                    .field("n_items", c.n_items)
                    .field("min_rows", c.min_rows)
                    .field("min_users", c.min_users)
                    .field("min_items", c.min_items);
            } else if let Some((r, u, i)) = facts.stats {
                event = event.field("n_rows", r).field("n_users", u).field("n_items", i);
            }
            event.emit();
            error.exit_code()
        }
    }
}

fn check_run_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::recipe(format!("--run-id {:?}: must match [A-Za-z0-9_.-]{{1,64}}", Value::from(id))))
    }
}
