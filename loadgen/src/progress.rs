//! The live progress line: an indicatif bar on a terminal, one plain line per interval otherwise
//! (CI logs, pipes), both on stderr so that `--json` output on stdout stays clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::outcome::{Lane, OutcomeClass};
use crate::run::Progress;

/// Where progress goes.
#[derive(Debug)]
pub enum ProgressDisplay {
    /// A bar on a terminal.
    Bar(ProgressBar),
    /// Plain lines on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressDisplay {
    /// A bar when stderr is a terminal, plain lines otherwise; nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return ProgressDisplay::Quiet;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(1000);
            if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            ProgressDisplay::Bar(bar)
        } else {
            ProgressDisplay::Lines
        }
    }

    /// Shows one interval.
    pub fn update(&self, p: &Progress<'_>) {
        let r = p.row;
        let secs = (r.end - r.start).max(1e-3);
        let per = |n: u64| n as f64 / secs;
        let c = |cl: OutcomeClass| r.completed[cl.index()];
        let p99 = |l: Lane| r.lane_p99_ms[l.index()].map_or("-".to_owned(), |v| format!("{v:.1}"));
        let msg = format!(
            "t={:5.1}s sent {:6.0}/s ok {:6.0}/s refused {:5.0}/s busy {:5.0}/s | p99 ms L0 {} L1 {} L2 {} L3 {} | in flight {} late {} dropped {}",
            r.end,
            per(r.sent),
            per(c(OutcomeClass::Ok)),
            per(c(OutcomeClass::Refused)),
            per(c(OutcomeClass::Busy) + c(OutcomeClass::Throttled)),
            p99(Lane::L0),
            p99(Lane::L1),
            p99(Lane::L2),
            p99(Lane::L3),
            r.in_flight,
            r.late,
            r.dropped
        );
        match self {
            ProgressDisplay::Bar(bar) => {
                let planned = p.planned.as_secs_f64().max(1e-3);
                bar.set_position(((r.end / planned).min(1.0) * 1000.0) as u64);
                bar.set_message(msg);
            }
            ProgressDisplay::Lines => eprintln!("{msg}"),
            ProgressDisplay::Quiet => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let ProgressDisplay::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
