//! `citaflow import`: the initial load of the directory from CSV files, through the public
//! API, then one demo booking.
//!
//! Every file is read and checked before anything is sent (a missing file or a bad header
//! stops the import; a bad row never does). Rows go to the bulk endpoints in chunks, a few
//! chunks at a time, in dependency order (centers and users, then doctors and patients), and
//! each per-item result is mapped back to its file and line. Re-running is safe: every record
//! has a natural key the API keeps unique (center name, username, doctor username, patient
//! email), so a second run gets 409 `duplicate` for each row, counted as "already present".
//!
//! The CSV files and their checks are in `files`, what is sent for each row and how its
//! answer is read in `send`, the result in `report`; the demo booking is [`crate::demo`].

mod files;
mod report;
mod send;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use indicatif::{MultiProgress, ProgressBar};

use files::{Failure, parse_file};
pub use files::{Kind, Row};
use report::{FileReport, ImportReport, render_report};
use send::{Outcome, item, send_chunk};

use crate::{
    api::{Api, ApiArgs},
    progress,
};

/// `citaflow import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Folder with users.csv, centers.csv, doctors.csv and patients.csv.
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub dir: PathBuf,

    /// Rows per bulk request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=5000), value_name = "N")]
    pub chunk_size: u16,

    /// Bulk requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32), value_name = "N")]
    pub concurrency: u16,

    /// Send rows one by one to POST /<resource> instead of the bulk endpoints.
    #[arg(long)]
    pub one_by_one: bool,

    /// Do not book the demo appointment after the import.
    #[arg(long)]
    pub no_book: bool,

    /// Print one JSON document (report, failures, booking) instead of tables; no progress bars.
    #[arg(long)]
    pub json: bool,

    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Help shown after `citaflow import --help`.
pub const HELP: &str = "\
Files (UTF-8 CSV, a header row, columns in any order, * = required; empty optional cells are left out):
  centers.csv   name*, address*, timezone* (IANA, e.g. Europe/Madrid), language (es|en)
  users.csv     username*, role* (admin|secretary), password
  doctors.csv   username*, name*, specialty*, password
  patients.csv  email*, name*, phone (E.164, e.g. +34600123456), language (es|en),
                status (ACTIVE|INACTIVE), username (default: the email), password

Keys: a row is identified by centers.name, users.username, doctors.username and
patients.email. Rows already in the API (409 duplicate) count as \"already present\", so
running the import twice adds nothing. A key repeated inside one file fails that row.

Passwords: optional. A user in users.csv without one gets a random password that is never
shown (an admin sets a real one with POST /users/{id}/password); doctors and patients without
one cannot log in until one is set. Passwords are never printed.

After the import one demo appointment is booked (the first center, doctor and active patient
of the files, the first free 30-minute slot on a weekday morning, Prefer: wait=10) and printed
as JSON; a later run finds and prints the same appointment instead of booking another.

Exit status: 0 every row imported or already present (and the booking made), 1 some rows or
the booking failed (listed with file, line and reason), 2 the import could not run.

Examples:
  CITAFLOW_USERNAME=admin CITAFLOW_PASSWORD=\"$(cat .run/secrets/admin-password)\" citaflow import
  citaflow import --dir ./odontocare --username admin --password-env ADMIN_PASSWORD
  citaflow import --token \"$TOKEN\" --json --no-book | jq .failures";

/// Runs the import; answers the process exit code (0 all in, 1 some rows or the booking
/// failed). Errors mean it could not run at all.
pub async fn run(args: ImportArgs) -> anyhow::Result<u8> {
    if !args.dir.is_dir() {
        bail!(
            "data folder {} not found (use --dir to point at the folder with the CSV files)",
            args.dir.display()
        );
    }
    let mut parsed = Vec::new();
    for kind in Kind::ALL {
        parsed.push(parse_file(kind, &args.dir.join(kind.file()))?);
    }
    let api = Api::connect(&args.api, args.concurrency as usize).await?;
    api.require_admin().await?;

    let progress = MultiProgress::with_draw_target(progress::target(args.json || args.quiet));
    let style = progress::style("{prefix:>13} [{bar:30}] {pos}/{len} {msg}");
    let bars: Vec<ProgressBar> = parsed
        .iter()
        .map(|file| {
            let bar = progress.add(ProgressBar::new(
                (file.rows.len() + file.failures.len()) as u64,
            ));
            bar.set_style(style.clone());
            bar.set_prefix(file.kind.file());
            bar.inc(file.failures.len() as u64);
            bar
        })
        .collect();

    let api = Arc::new(api);
    let one_by_one = args.one_by_one;
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let mut present: HashMap<Kind, Vec<Row>> = HashMap::new();
    for (file, bar) in parsed.into_iter().zip(&bars) {
        let kind = file.kind;
        let mut report = FileReport {
            file: kind.file(),
            rows: file.rows.len() + file.failures.len(),
            ..Default::default()
        };
        report.failed = file.failures.len();
        failures.extend(file.failures);
        let chunks: Vec<Vec<Row>> = file
            .rows
            .chunks(args.chunk_size as usize)
            .map(<[Row]>::to_vec)
            .collect();
        let mut results = stream::iter(chunks.into_iter().map(|rows| {
            let api = api.clone();
            async move {
                let items = rows.iter().map(|r| item(kind, r)).collect();
                let outcomes = send_chunk(&api, kind, items, one_by_one).await;
                (rows, outcomes)
            }
        }))
        .buffered(args.concurrency as usize);
        let mut in_order = Vec::new();
        while let Some((rows, outcomes)) = results.next().await {
            let outcomes = outcomes.with_context(|| format!("importing {}", kind.file()))?;
            bar.inc(rows.len() as u64);
            in_order.extend(rows.into_iter().zip(outcomes));
        }
        for (row, outcome) in in_order {
            match outcome {
                Outcome::Created => report.created += 1,
                Outcome::Present => report.already_present += 1,
                Outcome::Failed { code, reason } => {
                    report.failed += 1;
                    failures.push(Failure {
                        file: kind.file(),
                        line: row.line,
                        code,
                        reason,
                    });
                    continue;
                }
            }
            present.entry(kind).or_default().push(row);
        }
        bar.set_message(format!(
            "{} new, {} present, {} failed",
            report.created, report.already_present, report.failed
        ));
        bar.finish();
        reports.push(report);
    }
    drop(bars);
    let _ = progress.clear();
    failures.sort_by(|a, b| {
        let order = |f: &str| Kind::ALL.iter().position(|k| k.file() == f);
        (order(a.file), a.line).cmp(&(order(b.file), b.line))
    });

    let (booking, booking_status, booking_error) = if args.no_book {
        (None, "skipped", None)
    } else {
        match crate::demo::book(&api, &present).await {
            Ok((booking, existing)) => (
                Some(booking),
                if existing { "existing" } else { "booked" },
                None,
            ),
            Err(e) => (None, "failed", Some(format!("{e:#}"))),
        }
    };
    let ok = failures.is_empty() && booking_status != "failed";
    let report = ImportReport {
        files: reports,
        failures,
        booking,
        booking_status,
        booking_error,
        ok,
    };
    if args.json {
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        crate::emit(&render_report(&report));
    }
    Ok(if ok { 0 } else { 1 })
}
