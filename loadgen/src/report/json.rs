//! `--json`: the whole [`Report`] as pretty JSON.

use super::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
