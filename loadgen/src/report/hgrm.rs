//! HdrHistogram percentile-distribution files (`.hgrm`), in the classic four-column layout that
//! `HistogramLogProcessor`, the HdrHistogram online plotter and wrk2 print:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.105 0.000000000000          1           1.00
//!  ...
//! #[Mean    =        0.263, StdDeviation   =        0.136]
//! #[Max     =        1.056, Total count    =        10000]
//! #[Buckets =           20, SubBuckets     =         2048]
//! ```

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Renders `h` with values divided by `scale` (1000 turns µs into ms), five ticks per half
/// distance as the Java implementation does by default.
pub fn render(h: &Histogram<u64>, scale: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / scale;
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(s, "{value:>12.3} {q:>2.12} {total:>10}");
        }
    }
    // Java's sub-bucket count: the power of two covering 2 × 10^sigfig.
    let sub_buckets = (2.0 * 10f64.powi(i32::from(h.sigfig())))
        .log2()
        .ceil()
        .exp2() as u64;
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets
    );
    s
}

/// One parsed line of a `.hgrm` file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HgrmLine {
    /// Value.
    pub value: f64,
    /// Percentile level, 0..=1.
    pub percentile: f64,
    /// Count up to this value.
    pub total_count: u64,
}

/// Parses the data lines of a `.hgrm` file (as a plotter would), skipping header and footer.
pub fn parse(text: &str) -> Result<Vec<HgrmLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with("Value") {
            continue;
        }
        let cols: Vec<&str> = t.split_whitespace().collect();
        if cols.len() != 3 && cols.len() != 4 {
            return Err(format!("line {}: {} columns", n + 1, cols.len()));
        }
        let f = |i: usize| {
            cols[i]
                .parse::<f64>()
                .map_err(|e| format!("line {}: {e}", n + 1))
        };
        out.push(HgrmLine {
            value: f(0)?,
            percentile: f(1)?,
            total_count: cols[2]
                .parse()
                .map_err(|e| format!("line {}: {e}", n + 1))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn layout_round_trips_and_is_monotonic() {
        let mut h = crate::recorder::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let text = render(&h, 1000.0);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(
            text.contains("#[Max     =      100.031, Total count    =        10000]"),
            "{text}"
        );
        let lines = parse(&text).unwrap();
        assert!(lines.len() > 50);
        assert_eq!(lines.last().unwrap().percentile, 1.0);
        assert_eq!(lines.last().unwrap().total_count, 10_000);
        for w in lines.windows(2) {
            assert!(w[1].value >= w[0].value);
            assert!(w[1].percentile >= w[0].percentile);
        }
        let med = lines.iter().find(|l| l.percentile >= 0.5).unwrap();
        assert!((med.value - 50.0).abs() < 0.1, "{med:?}");
    }
}
