//! Progress of a long loop (sampling, Inception features): a bar when stderr is a terminal; in a
//! log (stderr redirected, a run under `nohup`) an `info` line at every tenth of the way, with
//! the rate and the time left, so that a background job says where it stands.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Instant;

/// See the module doc. `set_position` takes `&self`, so the tracker can be moved into an `Fn`
/// callback.
pub struct Progress {
    bar: ProgressBar,
    log: Option<LogLines>,
}

struct LogLines {
    what: String,
    len: u64,
    /// The first position reported and when: the rate counts from there (work done before,
    /// e.g. parts of an interrupted run reused at once, does not inflate it).
    first: Cell<Option<(u64, Instant)>>,
    /// The tenth of the way (1..=10) whose line comes next.
    next_tenth: Cell<u64>,
}

impl Progress {
    /// A tracker of `len` units of `what` (e.g. `"sample runs/x"`; the log lines name it);
    /// `template` is the bar's indicatif template. Nothing is shown when `enabled` is false.
    pub fn new(len: u64, enabled: bool, template: &str, what: impl Into<String>) -> Self {
        Self::with_terminal(
            len,
            enabled,
            std::io::stderr().is_terminal(),
            template,
            what,
        )
    }

    /// [`Progress::new`] with the terminal test given (`terminal`: a bar; otherwise log lines).
    pub fn with_terminal(
        len: u64,
        enabled: bool,
        terminal: bool,
        template: &str,
        what: impl Into<String>,
    ) -> Self {
        if !enabled || len == 0 {
            return Self {
                bar: ProgressBar::hidden(),
                log: None,
            };
        }
        if terminal {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(what.into());
            return Self { bar, log: None };
        }
        Self {
            bar: ProgressBar::hidden(),
            log: Some(LogLines {
                what: what.into(),
                len,
                first: Cell::new(None),
                next_tenth: Cell::new(1),
            }),
        }
    }

    /// `pos` units done (of `len`).
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        if let Some(line) = self.log_line(pos) {
            tracing::info!("{line}");
        }
    }

    /// The log line due at `pos`, if one is (at most one per call: the latest tenth passed).
    fn log_line(&self, pos: u64) -> Option<String> {
        let l = self.log.as_ref()?;
        let (p0, t0) = match l.first.get() {
            Some(f) => f,
            None => {
                let f = (pos, Instant::now());
                l.first.set(Some(f));
                f
            }
        };
        let tenth = (pos.min(l.len) * 10 / l.len).min(10);
        if tenth < l.next_tenth.get() {
            return None;
        }
        l.next_tenth.set(tenth + 1);
        let head = format!("{}: {pos}/{} ({}%)", l.what, l.len, tenth * 10);
        let secs = t0.elapsed().as_secs_f64();
        if pos <= p0 || secs <= 0.0 {
            return Some(head);
        }
        let rate = (pos - p0) as f64 / secs;
        let left = (l.len - pos.min(l.len)) as f64 / rate;
        Some(format!(
            "{head}, {rate:.1}/s over {secs:.0} s, ~{left:.0} s left"
        ))
    }

    /// Removes the bar (log lines: nothing to do).
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gets_one_line_per_tenth_passed() {
        let p = Progress::with_terminal(1000, true, false, "{bar}", "sample x");
        let lines: Vec<(u64, String)> = [0, 50, 99, 100, 150, 350, 360, 1000, 1000]
            .into_iter()
            .filter_map(|pos| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                p.log_line(pos).map(|l| (pos, l))
            })
            .collect();
        let at: Vec<u64> = lines.iter().map(|(p, _)| *p).collect();
        // 100 crosses 10 %, 350 crosses 20 % and 30 % (one line), 1000 ends it (once).
        assert_eq!(at, [100, 350, 1000]);
        let l = &lines[1].1;
        assert!(
            l.starts_with("sample x: 350/1000 (30%), ") && l.contains("/s over "),
            "{l}"
        );
        let l = &lines[2].1;
        assert!(
            l.contains("1000/1000 (100%)") && l.ends_with("~0 s left"),
            "{l}"
        );
        // Resumed work reported at once (the first position, 400 of 1000) gives no rate yet.
        let p = Progress::with_terminal(1000, true, false, "{bar}", "x");
        assert_eq!(p.log_line(400).unwrap(), "x: 400/1000 (40%)");
    }

    #[test]
    fn disabled_or_on_a_terminal_there_are_no_log_lines() {
        for (enabled, terminal) in [(false, false), (false, true), (true, true)] {
            let p = Progress::with_terminal(10, enabled, terminal, "{bar}", "x");
            assert!((0..=10).all(|pos| p.log_line(pos).is_none()));
        }
        // An empty loop logs nothing (and divides by nothing).
        let p = Progress::with_terminal(0, true, false, "{bar}", "x");
        assert!(p.log_line(0).is_none());
    }
}
