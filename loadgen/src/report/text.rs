//! The summary printed at the end of a run.

use std::fmt::Write;

use super::{LaneRow, Report};

pub(crate) fn lane_table(s: &mut String, lanes: &[LaneRow]) {
    let _ = writeln!(
        s,
        "  {:<5} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} │ {:>8} {:>8} {:>8} {:>8} {:>8} │ {:>8}",
        "lane",
        "answered",
        "ok",
        "refused",
        "busy",
        "thrtl",
        "error",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "raw p99"
    );
    for l in lanes {
        let c = &l.corrected;
        if l.ok == 0 {
            // No success: no latency of successes to show.
            let _ = writeln!(
                s,
                "  {:<5} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} │ {:>8} {:>8} {:>8} {:>8} {:>8} │ {:>8}",
                l.lane, l.answered, l.ok, l.refused, l.busy, l.throttled, l.error, "-", "-", "-",
                "-", "-", "-"
            );
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<5} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} │ {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} │ {:>8.3}",
            l.lane, l.answered, l.ok, l.refused, l.busy, l.throttled, l.error, c.p50, c.p90, c.p99,
            c.p999, c.max, l.raw.p99
        );
    }
}

/// Renders the report as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "loadgen: scenario {} against {} — {:.1} s planned, {:.1} s with draining",
        r.scenario, r.target, r.planned_s, r.elapsed_s
    );
    let _ = writeln!(
        s,
        "rate: base {:.0}/s ({}), peak {:.0}/s; {} senders",
        r.base_rate, r.rate_source, r.peak_rate, r.senders
    );
    let g = &r.generator;
    let _ = writeln!(
        s,
        "generator: {} scheduled, {} sent ({:.0}/s), {} late (> {} ms), {} dropped, {} waited \
         for signing; lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        g.scheduled,
        g.sent,
        g.achieved_rate,
        g.late,
        g.late_threshold_ms,
        g.dropped,
        g.starved,
        g.lag.p50,
        g.lag.p99,
        g.lag.max
    );
    let sg = &r.signing;
    let _ = writeln!(
        s,
        "signing: {} thread(s) × {:.0}/s measured, {} prepared, busy {:.0} %, {:.2} s signed \
         ahead before start{}",
        sg.threads,
        sg.per_thread_rate,
        sg.prepared,
        sg.utilisation * 100.0,
        sg.prefill_s,
        if sg.bottleneck {
            " — SIGNING WAS THE BOTTLENECK"
        } else {
            ""
        }
    );
    if sg.keys > 0 {
        let _ = writeln!(
            s,
            "population: {} signing Users holding {} signing keys; {}",
            sg.users, sg.keys, sg.spread
        );
    }
    let _ = writeln!(
        s,
        "\nlatency of successful requests, ms, corrected (from intended send time); raw = from \
         actual send"
    );
    let _ = writeln!(s, "whole run:");
    lane_table(&mut s, &r.lanes);
    if r.phases.len() > 1 {
        for p in &r.phases {
            let _ = writeln!(
                s,
                "phase {} ({:.1}–{:.1} s, {} sent):",
                p.name, p.start, p.end, p.sent
            );
            lane_table(&mut s, &p.lanes);
        }
    }
    if !r.tags.is_empty() {
        let _ = writeln!(s, "\nby tag:");
        let _ = writeln!(
            s,
            "  {:<24} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "tag", "ok", "refused", "busy", "thrtl", "error"
        );
        for t in &r.tags {
            let _ = writeln!(
                s,
                "  {:<24} {:>9} {:>9} {:>8} {:>8} {:>8}",
                t.tag, t.ok, t.refused, t.busy, t.throttled, t.error
            );
        }
    }
    if !r.codes.is_empty() {
        let _ = writeln!(s, "\nrefusal codes (phase, lane, code: count):");
        for c in &r.codes {
            let _ = writeln!(
                s,
                "  {:<12} {:<5} {:<16} {}",
                c.phase, c.lane, c.code, c.count
            );
        }
    }
    if !r.events.is_empty() {
        let _ = writeln!(s, "\nevents:");
        for e in &r.events {
            let _ = writeln!(s, "  {e}");
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(s, "\nwarnings:");
        for w in &r.warnings {
            let _ = writeln!(s, "  ! {w}");
        }
    }
    if !r.expectations.is_empty() {
        let _ = writeln!(s, "\nexpectations:");
        for e in &r.expectations {
            let _ = writeln!(
                s,
                "  [{}] {} — observed {}{}",
                e.verdict(),
                e.check,
                e.observed,
                if e.why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", e.why)
                }
            );
            if let Some(why) = &e.not_measured {
                let _ = writeln!(s, "      not measured: {why}");
            }
        }
        let failed = r
            .expectations
            .iter()
            .any(|e| !e.passed && e.not_measured.is_none());
        let _ = writeln!(
            s,
            "{}",
            if r.passed {
                "all expectations held"
            } else if failed {
                "SOME EXPECTATIONS FAILED"
            } else {
                "SOME EXPECTATIONS NOT MEASURED: the generator fell behind (the counts held)"
            }
        );
    }
    s
}
