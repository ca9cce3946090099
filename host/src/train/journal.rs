//! The study journal: what makes a search resumable.
//!
//! With `training.storage_path` set, every finished trial is appended to
//! `<storage_path>/recotem_<name>_<run_id>.jsonl` as one JSON line and
//! flushed to disk (`fsync`) before the next trial is handed out. The first
//! line names the study and the recipe hash it belongs to.
//!
//! Why JSON lines, appended: a trial is written with a single `write` of one
//! line, so a process killed at any moment (SIGKILL included) leaves every
//! earlier line intact and at worst a torn last line without its newline,
//! which [`Journal::open`] drops (and truncates) before appending again.
//! There is no index or page to corrupt, no database to link, the file is
//! readable with `jq`, and appends never rewrite what is already on disk.
//! Completed work is lost only for the trial that was running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Format version of the journal lines.
const VERSION: u64 = 1;

/// One journaled trial.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Trial number in the plan.
    pub number: usize,
    /// Name of the trainer.
    pub algorithm: String,
    /// Hyper-parameters (a JSON object).
    pub params: Value,
    /// `scored`, `pruned`, `failed` or `timed_out`.
    pub outcome: String,
    /// The score of a `scored` trial (the best reported score of a
    /// `pruned` one).
    pub score: Option<f64>,
    /// Why a `failed` trial failed.
    pub error: Option<String>,
    /// Early-stop reports `(epoch, score)`, in order; written as
    /// `"reports": [[epoch, score], …]` only when there are some, so lines
    /// of trainers that do not report are unchanged. The median pruner of a
    /// resumed study needs them.
    pub reports: Vec<(u32, f64)>,
}

/// An open journal, positioned at its end.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Open (or create) the journal of `study` in `dir`; refuse one written
    /// for another recipe. Returns the journal and the trials it already
    /// holds, in the order they finished.
    pub fn open(dir: &Path, study: &str, recipe_hash: &str) -> Result<(Journal, Vec<Entry>)> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::config(format!("training.storage_path {}: cannot create the directory: {e}", dir.display()))
        })?;
        let path = dir.join(format!("{study}.jsonl"));
        let io = |what: &str, e: std::io::Error| Error::internal(format!("study journal {}: {what}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io("cannot open it", e))?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| io("cannot read it", e))?;
        // A torn last line (the process died mid-write) is dropped.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            file.set_len(complete as u64).map_err(|e| io("cannot drop its torn last line", e))?;
            file.seek(SeekFrom::End(0)).map_err(|e| io("cannot seek", e))?;
        }
        let mut lines = text[..complete].lines().filter(|l| !l.trim().is_empty());
        let mut journal = Journal { file, path: path.clone() };
        let Some(first) = lines.next() else {
            journal.append_line(&json!({
                "kind": "study", "version": VERSION, "study": study, "recipe_hash": recipe_hash,
            }))?;
            return Ok((journal, Vec::new()));
        };
        let bad = |why: &str| {
            Error::recipe(format!(
                "study journal {}: {why}; remove it, or use another --run-id to start a new study",
                path.display()
            ))
        };
        let head: Value = serde_json::from_str(first).map_err(|_| bad("the first line is not a study header"))?;
        if head["kind"] != "study" || head["version"] != VERSION {
            return Err(bad("the first line is not a version-1 study header"));
        }
        if head["recipe_hash"] != recipe_hash {
            return Err(Error::recipe(format!(
                "study journal {} was written for another recipe (recipe_hash {}, this recipe has {recipe_hash}): \
                 a study resumes only with the recipe it started with; restore that recipe, or use another --run-id",
                path.display(),
                head["recipe_hash"].as_str().unwrap_or("?"),
            )));
        }
        let mut entries = Vec::new();
        for line in lines {
            let v: Value = serde_json::from_str(line).map_err(|_| bad("a line is not JSON"))?;
            let number = v["number"].as_u64().ok_or_else(|| bad("a trial line has no number"))?;
            entries.push(Entry {
                number: usize::try_from(number).map_err(|_| bad("a trial number is out of range"))?,
                algorithm: v["algorithm"].as_str().unwrap_or_default().to_string(),
                params: v["params"].clone(),
                outcome: v["outcome"].as_str().unwrap_or_default().to_string(),
                score: v["score"].as_f64(),
                error: v["error"].as_str().map(str::to_string),
                reports: reports(&v["reports"]).ok_or_else(|| bad("a trial line has malformed reports"))?,
            });
        }
        Ok((journal, entries))
    }

    /// Append one finished trial and flush it to disk.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        let mut line = json!({
            "kind": "trial",
            "number": entry.number,
            "algorithm": entry.algorithm,
            "params": entry.params,
            "outcome": entry.outcome,
        });
        if let Some(s) = entry.score {
            line["score"] = json!(s);
        }
        if let Some(e) = &entry.error {
            line["error"] = json!(e);
        }
        if !entry.reports.is_empty() {
            line["reports"] = json!(entry.reports.iter().map(|(e, s)| json!([e, s])).collect::<Vec<_>>());
        }
        self.append_line(&line)
    }

    fn append_line(&mut self, value: &Value) -> Result<()> {
        let mut bytes = serde_json::to_vec(value).map_err(|e| Error::internal(e.to_string()))?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::internal(format!("study journal {}: cannot append a trial: {e}", self.path.display())))
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `[[epoch, score], …]` (absent: none); `None` when malformed.
fn reports(v: &Value) -> Option<Vec<(u32, f64)>> {
    if v.is_null() {
        return Some(Vec::new());
    }
    v.as_array()?
        .iter()
        .map(|pair| {
            let epoch = u32::try_from(pair.get(0)?.as_u64()?).ok()?;
            let score = pair.get(1)?.as_f64()?;
            Some((epoch, score))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            number: n,
            algorithm: "A".into(),
            params: json!({"x": 1}),
            outcome: "scored".into(),
            score: Some(0.5),
            error: None,
            reports: Vec::new(),
        }
    }

    #[test]
    fn reports_and_pruned_trials_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), "s", "h").unwrap();
        let pruned = Entry { outcome: "pruned".into(), score: Some(0.25), reports: vec![(2, 0.2), (4, 0.25)], ..entry(0) };
        j.append(&pruned).unwrap();
        j.append(&entry(1)).unwrap();
        drop(j);
        let (_, e) = Journal::open(dir.path(), "s", "h").unwrap();
        assert_eq!(e[0].outcome, "pruned");
        assert_eq!(e[0].reports, vec![(2, 0.2), (4, 0.25)]);
        assert!(e[1].reports.is_empty());
        let text = std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap();
        assert_eq!(text.matches("\"reports\"").count(), 1, "{text}");
    }

    #[test]
    fn appends_resume_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, e) = Journal::open(dir.path(), "s", "h1").unwrap();
        assert!(e.is_empty());
        j.append(&entry(0)).unwrap();
        j.append(&entry(1)).unwrap();
        drop(j);
        // A torn write of a third line.
        let path = dir.path().join("s.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"kind\":\"trial\",\"num").unwrap();
        drop(f);
        let (mut j, e) = Journal::open(dir.path(), "s", "h1").unwrap();
        assert_eq!(e.iter().map(|e| e.number).collect::<Vec<_>>(), vec![0, 1]);
        j.append(&entry(2)).unwrap();
        drop(j);
        let (_, e) = Journal::open(dir.path(), "s", "h1").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].score, Some(0.5));
        // Another recipe is refused (exit 2).
        let err = Journal::open(dir.path(), "s", "h2").err().expect("refused");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("another recipe"), "{err}");
    }
}
