//! The import's result: counts per file, the failed rows, and the demo appointment, as JSON
//! (`--json`) or as text tables.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::files::Failure;

/// Counts of one file.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FileReport {
    pub file: &'static str,
    pub rows: usize,
    pub created: usize,
    pub already_present: usize,
    pub failed: usize,
}

/// The whole import's result.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    pub failures: Vec<Failure>,
    pub booking: Option<Value>,
    /// `booked` (new), `existing` (found from an earlier run), `skipped` or `failed`.
    pub booking_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_error: Option<String>,
    pub ok: bool,
}

/// The report as text: a table per file, the failed rows, the demo appointment.
pub fn render_report(report: &ImportReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>8} {:>16} {:>7}",
        "FILE", "ROWS", "CREATED", "ALREADY PRESENT", "FAILED"
    );
    for f in &report.files {
        let _ = writeln!(
            out,
            "{:<22} {:>6} {:>8} {:>16} {:>7}",
            f.file, f.rows, f.created, f.already_present, f.failed
        );
    }
    if report.failures.is_empty() {
        let _ = writeln!(out, "\nEvery row is in.");
    } else {
        let _ = writeln!(out, "\n{} row(s) failed:", report.failures.len());
        for f in &report.failures {
            let _ = writeln!(out, "  {}:{}: {} [{}]", f.file, f.line, f.reason, f.code);
        }
    }
    let _ = match (report.booking_status, &report.booking) {
        ("booked", Some(b)) => writeln!(out, "\nDemo appointment booked:\n{}", pretty(b)),
        ("existing", Some(b)) => writeln!(
            out,
            "\nDemo appointment (already booked by an earlier import):\n{}",
            pretty(b)
        ),
        ("failed", _) => writeln!(
            out,
            "\nDemo appointment not booked: {}",
            report.booking_error.as_deref().unwrap_or("unknown error")
        ),
        _ => Ok(()),
    };
    out
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
