//! The result of a run: the JSON document (`--json`, `--out`) and the text tables.

use std::{collections::BTreeMap, fmt::Write as _};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::stats::Latency;

/// The result of a run, as printed with --json and written with --out.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub config: Value,
    pub summary: Summary,
    /// HTTP latency in milliseconds from when each request was due, overall and per operation.
    pub latency_ms: BTreeMap<String, Latency>,
    /// Answers by operation: HTTP status codes, or `error:<kind>` when no answer came.
    pub status: BTreeMap<String, BTreeMap<String, u64>>,
    pub to_final: ToFinal,
    /// Transport failures and 5xx answers by kind, with a few samples.
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub started_at: DateTime<Utc>,
    /// Requests due in the run (rate × duration).
    pub scheduled: u64,
    pub sent: u64,
    /// Due while --concurrency requests were in flight, so not sent.
    pub dropped: u64,
    /// Sent more than 10 ms after they were due (the generator itself fell behind).
    pub late: u64,
    /// Answered requests (any status).
    pub answered: u64,
    /// Transport failures and 5xx answers.
    pub errors: u64,
    /// Creates and reschedules answered 202.
    pub accepted_bookings: u64,
    pub send_window_secs: f64,
    /// Requests sent per second over the send window.
    pub achieved_rate: f64,
    /// GETs made to follow sampled bookings (not part of the rate).
    pub poll_requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_prefix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ToFinal {
    pub method: &'static str,
    pub followed: u64,
    /// 202 received → first read that is no longer pending (client clock; up to 20 ms late).
    pub client_ms: Latency,
    /// `decided_at - requested_at` of the booking (server clock).
    pub server_ms: Latency,
    pub outcomes: BTreeMap<String, u64>,
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The report as text tables.
pub(super) fn render_table(r: &LoadReport, path: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(
        out,
        "sent {} of {} due in {:.1}s: {:.1} req/s achieved ({} dropped at the concurrency cap, {} late), {} answered, {} errors",
        s.sent,
        s.scheduled,
        s.send_window_secs,
        s.achieved_rate,
        s.dropped,
        s.late,
        s.answered,
        s.errors
    );
    let _ = writeln!(out, "\nHTTP latency (ms, from when each request was due)");
    latency_table(
        &mut out,
        "OPERATION",
        r.latency_ms.iter().map(|(name, l)| (name.as_str(), l)),
    );
    let _ = writeln!(out, "\nStatus counts");
    for (op, statuses) in &r.status {
        let line: Vec<String> = statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "  {:<11} {}", op, line.join(", "));
    }
    let f = &r.to_final;
    let _ = writeln!(
        out,
        "\n202 → final state ({} followed; polling GET every 20 ms)",
        f.followed
    );
    latency_table(
        &mut out,
        "CLOCK",
        [("client", &f.client_ms), ("server", &f.server_ms)],
    );
    let outcomes: Vec<String> = f
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(
        out,
        "  outcomes: {}",
        if outcomes.is_empty() {
            "-".to_owned()
        } else {
            outcomes.join(", ")
        }
    );
    if !r.errors.is_empty() {
        let _ = writeln!(out, "\nErrors");
        for (kind, count) in &r.errors {
            let _ = writeln!(out, "  {kind}: {count}");
        }
        for sample in &r.error_samples {
            let _ = writeln!(out, "  e.g. {sample}");
        }
    }
    if let Some(path) = path {
        let _ = writeln!(out, "\nJSON written to {}", path.display());
    }
    out
}

/// A table of percentiles: a header naming the first column, then a row per name.
fn latency_table<'a>(
    out: &mut String,
    first_column: &str,
    rows: impl IntoIterator<Item = (&'a str, &'a Latency)>,
) {
    let _ = writeln!(
        out,
        "{:<11} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        first_column, "COUNT", "P50", "P90", "P99", "P99.9", "MAX"
    );
    for (name, l) in rows {
        let _ = writeln!(
            out,
            "{:<11} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name, l.count, l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
}
