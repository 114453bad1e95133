//! `loadgen merge`: one per-lane report from the `.hlog` files of several loadgen processes.
//!
//! One generator process may not be enough for a big server (see the README's sizing
//! section): run several, each with `--out`, then merge their `latency.hlog` files. Each file
//! holds, per collection interval, a corrected-latency histogram per lane (`L0`..`L3`), per
//! lane and outcome class (`L3.busy`, …) and the raw latency of successes (`L3.ok.raw`).
//! Histograms add exactly (HDR histograms of the same precision merge without loss), so the
//! merged per-lane table — answers by class, percentiles of successes — is the one a single
//! process sending all that traffic would have printed. The processes' clocks place the
//! intervals (the `#[BaseTime` of each file), which also gives the combined answer rate over
//! the span where the processes overlapped.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::outcome::{Lane, OutcomeClass};
use crate::report::LaneRow;

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No file was given.
    #[error("nothing to merge: name one or more .hlog files (loadgen --out DIR writes DIR/latency.hlog)")]
    Empty,
    /// A file is not an interval log.
    #[error("{file}: not a loadgen .hlog interval log: {why}")]
    Format {
        /// The file.
        file: String,
        /// What was wrong.
        why: String,
    },
    /// A file holds no per-class histograms (written by a loadgen before they were added).
    #[error(
        "{file}: no per-class histograms (L3.ok, …): written by an older loadgen, which \
         cannot be merged into a per-lane report; rerun it with this version"
    )]
    NoClasses {
        /// The file.
        file: String,
    },
}

/// One input file, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSummary {
    /// Its name as given.
    pub name: String,
    /// Intervals read.
    pub intervals: usize,
    /// Answers recorded.
    pub answered: u64,
    /// First interval start, seconds since the epoch (`None`: the file has no base time).
    pub start: Option<f64>,
    /// Last interval end, seconds since the epoch.
    pub end: Option<f64>,
}

/// The merged report.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The inputs.
    pub files: Vec<FileSummary>,
    /// Per lane, as in a run's report.
    pub lanes: Vec<LaneRow>,
    /// Answers per second over the span where every process was running (`None` when the
    /// files do not overlap or carry no base time).
    pub overlap_rate: Option<f64>,
}

fn new_hist() -> Histogram<u64> {
    // The recorder's bounds; auto-resizing, so a file written with other bounds still merges.
    let mut h = crate::recorder::new_histogram();
    h.auto(true);
    h
}

/// Per lane and class: corrected latency; plus the raw latency of successes.
#[derive(Default)]
struct Acc {
    class: BTreeMap<(Lane, OutcomeClass), Histogram<u64>>,
    raw_ok: BTreeMap<Lane, Histogram<u64>>,
}

fn parse_tag(tag: &str) -> Option<(Lane, Option<OutcomeClass>, bool)> {
    let mut it = tag.split('.');
    let first = it.next()?;
    let lane = Lane::ALL.into_iter().find(|l| l.name() == first)?;
    let class = match it.next() {
        None => return Some((lane, None, false)),
        Some(c) => OutcomeClass::ALL.into_iter().find(|k| k.name() == c)?,
    };
    let raw = match it.next() {
        None => false,
        Some("raw") => true,
        Some(_) => return None,
    };
    Some((lane, Some(class), raw))
}

/// Merges `files` (name, contents).
pub fn merge(files: &[(String, Vec<u8>)]) -> Result<Merged, MergeError> {
    if files.is_empty() {
        return Err(MergeError::Empty);
    }
    let mut acc = Acc::default();
    let mut summaries = Vec::new();
    let mut de = Deserializer::new();
    for (name, bytes) in files {
        let fail = |why: String| MergeError::Format {
            file: name.clone(),
            why,
        };
        let mut base: Option<f64> = None;
        let mut summary = FileSummary {
            name: name.clone(),
            intervals: 0,
            answered: 0,
            start: None,
            end: None,
        };
        let mut classes = 0usize;
        for entry in IntervalLogIterator::new(bytes) {
            let entry = entry.map_err(|e| fail(format!("{e:?}")))?;
            let ilh = match entry {
                LogEntry::BaseTime(t) => {
                    base = Some(t.as_secs_f64());
                    continue;
                }
                LogEntry::StartTime(t) => {
                    base = base.or(Some(t.as_secs_f64()));
                    continue;
                }
                LogEntry::Interval(ilh) => ilh,
            };
            // Intervals of foreign tags (other tools writing into the same log) are skipped.
            let Some((lane, class, raw)) = ilh.tag().and_then(|t| parse_tag(t.as_str())) else {
                continue;
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(ilh.encoded_histogram())
                .map_err(|e| fail(format!("histogram encoding: {e}")))?;
            let h: Histogram<u64> = de
                .deserialize(&mut std::io::Cursor::new(bytes))
                .map_err(|e| fail(format!("histogram: {e:?}")))?;
            let add = |into: &mut Histogram<u64>| into.add(&h).map_err(|e| fail(format!("{e:?}")));
            match (class, raw) {
                (None, _) => {
                    summary.intervals += 1;
                    summary.answered += h.len();
                    if let Some(b) = base {
                        let s = b + ilh.start_timestamp().as_secs_f64();
                        let e = s + ilh.duration().as_secs_f64();
                        summary.start = Some(summary.start.map_or(s, |x: f64| x.min(s)));
                        summary.end = Some(summary.end.map_or(e, |x: f64| x.max(e)));
                    }
                }
                (Some(c), false) => {
                    classes += 1;
                    add(acc.class.entry((lane, c)).or_insert_with(new_hist))?;
                }
                (Some(_), true) => add(acc.raw_ok.entry(lane).or_insert_with(new_hist))?,
            }
        }
        if summary.intervals == 0 {
            return Err(fail("no lane histograms (L0 … L3) in it".into()));
        }
        if classes == 0 {
            return Err(MergeError::NoClasses { file: name.clone() });
        }
        summaries.push(summary);
    }
    let empty = new_hist();
    let lanes = Lane::ALL
        .into_iter()
        .filter_map(|l| {
            let mut all = new_hist();
            for c in OutcomeClass::ALL {
                if let Some(h) = acc.class.get(&(l, c)) {
                    let _ = all.add(h);
                }
            }
            LaneRow::from_parts(
                l,
                |c| acc.class.get(&(l, c)).map_or(0, Histogram::len),
                acc.class.get(&(l, OutcomeClass::Ok)).unwrap_or(&empty),
                acc.raw_ok.get(&l).unwrap_or(&empty),
                &all,
            )
        })
        .collect();
    // The span every process covered: from the latest start to the earliest end.
    let overlap_rate = {
        let starts: Option<Vec<f64>> = summaries.iter().map(|s| s.start).collect();
        let ends: Option<Vec<f64>> = summaries.iter().map(|s| s.end).collect();
        match (starts, ends) {
            (Some(s), Some(e)) => {
                let from = s.iter().copied().fold(f64::MIN, f64::max);
                let to = e.iter().copied().fold(f64::MAX, f64::min);
                let total: u64 = summaries.iter().map(|s| s.answered).sum();
                let span: f64 = summaries
                    .iter()
                    .filter_map(|s| Some(s.end? - s.start?))
                    .fold(0.0, f64::max);
                // Answers are spread over each file's own span; the combined rate is their sum
                // per second of the longest span, meaningful only when the runs overlapped.
                (to > from && span > 0.0).then(|| total as f64 / span)
            }
            _ => None,
        }
    };
    Ok(Merged {
        files: summaries,
        lanes,
        overlap_rate,
    })
}

/// Renders the merged report as text (the per-lane table of a run's report).
pub fn render(m: &Merged) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "loadgen merge: {} interval log(s)", m.files.len());
    for f in &m.files {
        let _ = writeln!(
            s,
            "  {}: {} intervals, {} answers{}",
            f.name,
            f.intervals,
            f.answered,
            match (f.start, f.end) {
                (Some(a), Some(b)) => format!(", {:.1} s", b - a),
                _ => String::new(),
            }
        );
    }
    match m.overlap_rate {
        Some(r) => {
            let _ = writeln!(
                s,
                "combined: {r:.0} answers/s (the runs overlapped in time)"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "combined: the runs did not overlap in time: counts and percentiles add, rates do not"
            );
        }
    }
    let _ = writeln!(s, "\nlanes (latency of successes, corrected, ms):");
    crate::report::text::lane_table(&mut s, &m.lanes);
    s
}
