//! One self-contained HTML page: tables and inline SVG plots, no script, no external resource.
//!
//! Plots: the latency percentile spectrum per lane (x: percentile on the usual
//! `1/(1-p)` log axis, y: milliseconds on a log axis), throughput and outcomes per second over
//! time, and each lane's p99 over time.

use std::fmt::Write;

use super::{LaneRow, Report};
use crate::outcome::{Lane, OutcomeClass};
use crate::run::RunResult;

const LANE_COLOURS: [&str; Lane::COUNT] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f"];
const CLASS_COLOURS: [&str; OutcomeClass::COUNT] =
    ["#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#7f7f7f"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An axis: linear or log10, with labelled ticks.
struct Axis {
    label: String,
    log: bool,
    min: f64,
    max: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    fn map(&self, v: f64, from: f64, to: f64) -> f64 {
        let (a, b, v) = if self.log {
            (
                self.min.max(1e-12).log10(),
                self.max.max(1e-12).log10(),
                v.max(1e-12).log10(),
            )
        } else {
            (self.min, self.max, v)
        };
        let f = if b > a { (v - a) / (b - a) } else { 0.5 };
        from + f.clamp(0.0, 1.0) * (to - from)
    }

    fn log_ms(label: &str, lo: f64, hi: f64) -> Axis {
        let lo = lo.max(0.001);
        let hi = hi.max(lo * 10.0);
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let mut ticks = Vec::new();
        for e in a..=b {
            let v = 10f64.powi(e);
            ticks.push((v, fmt_num(v)));
        }
        Axis {
            label: label.to_owned(),
            log: true,
            min: 10f64.powi(a),
            max: 10f64.powi(b),
            ticks,
        }
    }

    fn linear(label: &str, max: f64) -> Axis {
        let max = if max > 0.0 { max } else { 1.0 };
        let raw = max / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(raw);
        let top = (max / step).ceil() * step;
        let mut ticks = Vec::new();
        let mut v = 0.0;
        while v <= top + step * 0.01 {
            ticks.push((v, fmt_num(v)));
            v += step;
        }
        Axis {
            label: label.to_owned(),
            log: false,
            min: 0.0,
            max: top,
            ticks,
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}", v)
    } else if v >= 1.0 {
        format!("{}", (v * 100.0).round() / 100.0)
    } else {
        format!("{}", (v * 10000.0).round() / 10000.0)
    }
}

struct Series<'a> {
    name: String,
    colour: &'a str,
    points: Vec<(f64, f64)>,
}

fn plot(title: &str, x: &Axis, y: &Axis, series: &[Series<'_>]) -> String {
    let (w, h) = (760.0, 360.0);
    let (l, r, t, b) = (70.0, 150.0, 30.0, 50.0);
    let (x0, x1, y0, y1) = (l, w - r, h - b, t);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t_}">"#,
        t_ = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/><text x="{}" y="18" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"##,
        (x0 + x1) / 2.0,
        esc(title)
    );
    for (v, label) in &x.ticks {
        let px = x.map(*v, x0, x1);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{y1}" stroke="#e0e0e0"/><text x="{px:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            y0 + 15.0,
            esc(label)
        );
    }
    for (v, label) in &y.ticks {
        let py = y.map(*v, y0, y1);
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 - 5.0,
            py + 4.0,
            esc(label)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        x1 - x0,
        y0 - y1
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        h - 12.0,
        esc(&x.label)
    );
    let _ = write!(
        s,
        r#"<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(&y.label)
    );
    let mut legend_y = t + 10.0;
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|(vx, vy)| format!("{:.1},{:.1}", x.map(*vx, x0, x1), y.map(*vy, y0, y1)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            se.colour,
            pts.join(" ")
        );
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{}" stroke-width="3"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            x1 + 10.0,
            x1 + 30.0,
            se.colour,
            x1 + 35.0,
            legend_y + 4.0,
            esc(&se.name)
        );
        legend_y += 18.0;
    }
    s.push_str("</svg>");
    s
}

fn spectrum(r: &RunResult) -> String {
    let mut series = Vec::new();
    let (mut lo, mut hi, mut xmax) = (f64::MAX, 0.0f64, 10.0f64);
    for lane in Lane::ALL {
        let h = r
            .totals
            .latency(None, Some(lane), &[OutcomeClass::Ok], true);
        if h.is_empty() {
            continue;
        }
        let n = h.len() as f64;
        let mut pts = Vec::new();
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            // The last point (q = 1) has no finite 1/(1-q): place it one decade past the
            // resolution the count supports.
            let xv = if q < 1.0 {
                1.0 / (1.0 - q)
            } else {
                n.max(10.0)
            };
            let ms = (v.value_iterated_to() as f64 / 1000.0).max(0.001);
            lo = lo.min(ms);
            hi = hi.max(ms);
            xmax = xmax.max(xv);
            pts.push((xv, ms));
        }
        series.push(Series {
            name: format!("{lane} ({} ok)", h.len()),
            colour: LANE_COLOURS[lane.index()],
            points: pts,
        });
    }
    if series.is_empty() {
        return "<p>No successful request: no latency spectrum.</p>".to_owned();
    }
    let decades = xmax.log10().ceil().max(1.0) as i32;
    let labels = [
        "0%",
        "90%",
        "99%",
        "99.9%",
        "99.99%",
        "99.999%",
        "99.9999%",
        "99.99999%",
    ];
    let x = Axis {
        label: "percentile".to_owned(),
        log: true,
        min: 1.0,
        max: 10f64.powi(decades),
        ticks: (0..=decades)
            .map(|e| {
                (
                    10f64.powi(e),
                    labels.get(e as usize).copied().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    };
    let y = Axis::log_ms("latency, ms (log)", lo, hi);
    plot(
        "Latency by percentile, per lane (successes, corrected)",
        &x,
        &y,
        &series,
    )
}

fn over_time(report: &Report) -> (String, String) {
    let rows = &report.intervals;
    let rate = |n: u64, a: f64, b: f64| n as f64 / (b - a).max(1e-3);
    let mut series = vec![Series {
        name: "sent".to_owned(),
        colour: "#000",
        points: rows
            .iter()
            .map(|r| (r.end, rate(r.sent, r.start, r.end)))
            .collect(),
    }];
    for c in OutcomeClass::ALL {
        if rows.iter().all(|r| r.completed[c.index()] == 0) {
            continue;
        }
        series.push(Series {
            name: c.name().to_owned(),
            colour: CLASS_COLOURS[c.index()],
            points: rows
                .iter()
                .map(|r| (r.end, rate(r.completed[c.index()], r.start, r.end)))
                .collect(),
        });
    }
    let tmax = rows.last().map_or(1.0, |r| r.end);
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let tp = plot(
        "Throughput and outcomes per second",
        &Axis::linear("time, s", tmax),
        &Axis::linear("requests / s", ymax),
        &series,
    );
    let mut lat = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for lane in Lane::ALL {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.lane_p99_ms[lane.index()].map(|v| (r.end, v.max(0.001))))
            .collect();
        for p in &pts {
            lo = lo.min(p.1);
            hi = hi.max(p.1);
        }
        if !pts.is_empty() {
            lat.push(Series {
                name: format!("{lane} p99"),
                colour: LANE_COLOURS[lane.index()],
                points: pts,
            });
        }
    }
    let lp = if lat.is_empty() {
        String::new()
    } else {
        plot(
            "p99 latency per lane over time (all answers, corrected)",
            &Axis::linear("time, s", tmax),
            &Axis::log_ms("latency, ms (log)", lo, hi),
            &lat,
        )
    };
    (tp, lp)
}

fn lane_table(lanes: &[LaneRow]) -> String {
    let mut s = String::from(
        "<table><tr><th>lane</th><th>answered</th><th>ok</th><th>refused</th><th>busy</th>\
         <th>throttled</th><th>error</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>\
         <th>max</th><th>raw p99</th></tr>",
    );
    for l in lanes {
        let c = &l.corrected;
        if l.ok == 0 {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td colspan=\"6\">no success</td></tr>",
                esc(&l.lane),
                l.answered,
                l.ok,
                l.refused,
                l.busy,
                l.throttled,
                l.error
            );
            continue;
        }
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            esc(&l.lane),
            l.answered,
            l.ok,
            l.refused,
            l.busy,
            l.throttled,
            l.error,
            c.p50,
            c.p90,
            c.p99,
            c.p999,
            c.max,
            l.raw.p99
        );
    }
    s.push_str("</table>");
    s
}

/// Renders the page.
pub fn render(r: &RunResult, report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadgen: {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}\
         table{{border-collapse:collapse;margin:0.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}\
         th{{background:#f0f0f0}}td:first-child{{text-align:left}}.text td{{text-align:left}}.pass{{color:#2a7a2a;font-weight:bold}}\
         .fail{{color:#c00;font-weight:bold}}.warn{{color:#a60}}pre{{background:#f7f7f7;padding:0.5em;white-space:pre-wrap}}</style>\
         </head><body>",
        esc(&report.scenario)
    );
    let _ = write!(
        s,
        "<h1>loadgen: {} against {}</h1><pre>{}</pre>",
        esc(&report.scenario),
        esc(&report.target),
        esc(&report.description)
    );
    let g = &report.generator;
    let _ = write!(
        s,
        "<p>Planned {:.1} s (run {:.1} s with draining); base rate {:.0}/s ({}), peak {:.0}/s; {} \
         senders. Generator: {} scheduled, {} sent, {} late, {} dropped, {} waited for signing; \
         lag p99 {:.3} ms, max {:.3} ms. Signing: {} thread(s) × {:.0}/s, busy {:.0} %.</p>",
        report.planned_s,
        report.elapsed_s,
        report.base_rate,
        esc(&report.rate_source),
        report.peak_rate,
        report.senders,
        g.scheduled,
        g.sent,
        g.late,
        g.dropped,
        g.starved,
        g.lag.p99,
        g.lag.max,
        report.signing.threads,
        report.signing.per_thread_rate,
        report.signing.utilisation * 100.0
    );
    if !report.warnings.is_empty() {
        s.push_str("<h2>Warnings</h2><ul>");
        for w in &report.warnings {
            let _ = write!(s, "<li class=\"warn\">{}</li>", esc(w));
        }
        s.push_str("</ul>");
    }
    if !report.expectations.is_empty() {
        let _ = write!(
            s,
            "<h2>Expectations: <span class=\"{}\">{}</span></h2><table class=\"text\"><tr><th>verdict</th>\
             <th>check</th><th>observed</th><th>why</th></tr>",
            if report.passed { "pass" } else { "fail" },
            if report.passed { "all held" } else { "FAILED" }
        );
        for e in &report.expectations {
            let _ = write!(
                s,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if e.passed { "pass" } else { "fail" },
                e.verdict(),
                esc(&e.check),
                esc(&match &e.not_measured {
                    Some(why) => format!("{} — not measured: {why}", e.observed),
                    None => e.observed.clone(),
                }),
                esc(&e.why)
            );
        }
        s.push_str("</table>");
    }
    s.push_str(
        "<h2>Latency per lane</h2><p>Successful requests, milliseconds, corrected (from the \
         intended send time); raw = from the actual send.</p>",
    );
    s.push_str(&lane_table(&report.lanes));
    s.push_str(&spectrum(r));
    let (tp, lp) = over_time(report);
    s.push_str("<h2>Over time</h2>");
    s.push_str(&tp);
    s.push_str(&lp);
    if report.phases.len() > 1 {
        s.push_str("<h2>Per phase</h2>");
        for p in &report.phases {
            let _ = write!(
                s,
                "<h3>{} ({:.1}–{:.1} s, {} sent)</h3>",
                esc(&p.name),
                p.start,
                p.end,
                p.sent
            );
            s.push_str(&lane_table(&p.lanes));
        }
    }
    if !report.tags.is_empty() {
        s.push_str(
            "<h2>By tag</h2><table><tr><th>tag</th><th>ok</th><th>refused</th><th>busy</th>\
             <th>throttled</th><th>error</th></tr>",
        );
        for t in &report.tags {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.tag),
                t.ok,
                t.refused,
                t.busy,
                t.throttled,
                t.error
            );
        }
        s.push_str("</table>");
    }
    if !report.codes.is_empty() {
        s.push_str(
            "<h2>Refusal codes</h2><table><tr><th>phase</th><th>lane</th><th>code</th>\
             <th>count</th></tr>",
        );
        for c in &report.codes {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.phase),
                esc(&c.lane),
                esc(&c.code),
                c.count
            );
        }
        s.push_str("</table>");
    }
    if !report.events.is_empty() {
        s.push_str("<h2>Events</h2><pre>");
        for e in &report.events {
            s.push_str(&esc(e));
            s.push('\n');
        }
        s.push_str("</pre>");
    }
    s.push_str("</body></html>\n");
    s
}
