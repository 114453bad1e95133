//! Writes an SVG line chart from a CSV of `x,series,…` rows (as `keys_curve` writes), y from
//! column `y_col` (0-based, default 2): `plot IN.csv OUT.svg [title] [x label] [y label] [y_col]`.

use dcc_benches::svg::{series_from_csv, Chart};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        return Err("usage: plot IN.csv OUT.svg [title] [x label] [y label] [y_col]".into());
    };
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    let chart = Chart {
        title: arg(3, "ECDSA P-256 verify rate, one core, keys used evenly"),
        x_label: arg(4, "signer keys loaded"),
        y_label: arg(5, "verifications per second"),
        series: series_from_csv(
            &std::fs::read_to_string(input)?,
            args.get(6).and_then(|c| c.parse().ok()).unwrap_or(2),
        ),
    };
    std::fs::write(output, chart.to_svg())?;
    Ok(())
}
