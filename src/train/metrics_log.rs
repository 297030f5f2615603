//! A run's `metrics.jsonl`: one JSON object per line, each keyed by a counter (`step` for the
//! regression loop, `iteration` for S-JKO). Both loops write through [`MetricsLog`], so a
//! resumed run keeps one history and can report what it logged last (JKO-Flow and EPT runs
//! keep no metrics file).

use crate::error::{NsgfError, Result};
use crate::io::npy::write_atomic;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metrics file of a trained network or run (JSON lines).
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Appends JSON lines to a run's metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    /// The last line kept when the log was opened (`None` for a new or empty log).
    pub last: Option<serde_json::Value>,
}

impl MetricsLog {
    /// Opens the log of a run that starts at counter `start` (the value of `key`: `"step"` or
    /// `"iteration"`). Lines of later counters — written after the checkpoint the run resumes
    /// from — are dropped (the file is rewritten atomically), so the file describes one history;
    /// lines that are not JSON objects with that key are dropped too.
    pub fn open(path: &Path, key: &str, start: usize) -> Result<Self> {
        let mut last = None;
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| NsgfError::io(path, e))?;
            let mut kept = String::new();
            for (l, v) in text
                .lines()
                .filter_map(|l| Some((l, serde_json::from_str::<serde_json::Value>(l).ok()?)))
            {
                if v[key].as_u64().is_some_and(|s| s as usize <= start) {
                    kept.push_str(l);
                    kept.push('\n');
                    last = Some(v);
                }
            }
            // Rewritten only when lines were dropped.
            if kept != text {
                write_atomic(path, kept.as_bytes())?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            last,
        })
    }

    /// The number under `field` in the last line kept when opened, if any.
    pub fn last_f64(&self, field: &str) -> Option<f64> {
        self.last.as_ref().and_then(|v| v[field].as_f64())
    }

    /// Appends one line.
    pub fn append(&self, line: &serde_json::Value) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| NsgfError::io(&self.path, e))?;
        writeln!(f, "{line}").map_err(|e| NsgfError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resumed_log_drops_later_lines_and_reports_the_last_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        std::fs::write(
            &path,
            "{\"iteration\":100,\"loss_d\":1.5}\nnot json\n{\"iteration\":200,\"loss_d\":2.5}\n{\"step\":250}\n{\"iteration\":300,\"loss_d\":3.5}\n",
        )
        .unwrap();
        let log = MetricsLog::open(&path, "iteration", 250).unwrap();
        assert_eq!(log.last_f64("loss_d"), Some(2.5));
        assert_eq!(log.last_f64("loss_g"), None);
        log.append(&json!({"iteration": 300, "loss_d": 4.0}))
            .unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let its: Vec<u64> = lines
            .iter()
            .map(|v| v["iteration"].as_u64().unwrap())
            .collect();
        assert_eq!(its, [100, 200, 300]);
        assert_eq!(lines[2]["loss_d"], 4.0);

        // A log opened at 0 keeps nothing logged later; a missing log is empty and created on append.
        assert!(MetricsLog::open(&path, "iteration", 0)
            .unwrap()
            .last
            .is_none());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let fresh = dir.path().join("new.jsonl");
        let log = MetricsLog::open(&fresh, "step", 7).unwrap();
        assert!(log.last.is_none() && !fresh.exists());
        log.append(&json!({"step": 8})).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "{\"step\":8}\n");
    }
}
