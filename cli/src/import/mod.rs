//! `citaflow import`: the initial load of the directory and the agenda from CSV files,
//! through the public API, then one demo booking.
//!
//! Every file is read and checked before anything is sent (a missing file or a bad header
//! stops the import; a bad row never does). Rows go to the bulk endpoints in chunks, a few
//! chunks at a time, in dependency order (centers and users, then doctors and patients, then
//! services, offers, working hours and exceptions, whose rows name the others by key), and
//! each per-item result is mapped back to its file and line. Re-running is safe: every
//! directory record and service has a natural key the API keeps unique (center name,
//! username, doctor username, patient email, service name), so a second run gets 409
//! `duplicate` for each row, counted as "already present"; the agenda files are compared with
//! what is there (`agenda`).
//!
//! The CSV files and their checks are in `files`, what is sent for each row and how its
//! answer is read in `send`, the agenda's lookups and comparisons in `agenda`, the result in
//! `report`; the demo booking is [`crate::demo`].

mod agenda;
mod files;
mod report;
mod send;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use indicatif::{MultiProgress, ProgressBar};
use serde_json::Value;

use agenda::{Directory, LOOKUP_FAILED, Prepared};
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

    /// Folder with centers.csv, users.csv, doctors.csv, patients.csv, services.csv,
    /// doctor_services.csv, working_hours.csv and agenda_exceptions.csv.
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
  centers.csv            name*, address*, timezone* (IANA, e.g. Europe/Madrid), language (es|en)
  users.csv              username*, role* (admin|secretary), password
  doctors.csv            username*, name*, specialty*, password
  patients.csv           email*, name*, phone (E.164, e.g. +34600123456), language (es|en),
                         status (ACTIVE|INACTIVE), username (default: the email), password
  services.csv           name*, duration_minutes*, buffer_before_minutes, buffer_after_minutes
  doctor_services.csv    doctor* (doctors.username), service* (services.name)
  working_hours.csv      doctor*, center* (centers.name), weekday* (monday..sunday), start*, end*
                         (HH:MM, the center's local time), valid_from, valid_until (YYYY-MM-DD)
  agenda_exceptions.csv  doctor*, kind* (time_off|extra), date* (YYYY-MM-DD), center, start, end, note

Keys: a row is identified by centers.name, users.username, doctors.username, patients.email
and services.name. Rows already in the API (409 duplicate) count as \"already present\", so
running the import twice adds nothing. The agenda files name doctors, centers and services by
those keys (looked up through the API); an offer the doctor already has, the very same
working hours (refused with 409 hours_overlap) and an exception already there count as
\"already present\" too. Offers are only added, never removed. A key repeated inside one file
fails that row.

Passwords: optional. A user in users.csv without one gets a random password that is never
shown (an admin sets a real one with POST /users/{id}/password); doctors and patients without
one cannot log in until one is set. Passwords are never printed.

After the import one demo appointment is booked and printed as JSON: the first doctor and
active patient of the files, the first service of services.csv the doctor offers, at the
first free slot GET /availability offers in the next 14 days (Prefer: wait=10). A later run
finds and prints the same appointment instead of booking another.

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
    let style = progress::style("{prefix:>21} [{bar:30}] {pos}/{len} {msg}");
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
    let mut directory: Option<Result<Directory, String>> = None;
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
        if kind.has_references() && !file.rows.is_empty() && directory.is_none() {
            // Read once, after the directory and the services are in.
            directory = Some(Directory::load(&api).await.map_err(|e| format!("{e:#}")));
        }
        let outcomes = match (kind, &directory) {
            (_, _) if file.rows.is_empty() => Vec::new(),
            (_, Some(Err(reason))) if kind.has_references() => {
                bar.inc(file.rows.len() as u64);
                vec![
                    Outcome::Failed {
                        code: LOOKUP_FAILED.into(),
                        reason: format!("the directory could not be read from the API: {reason}"),
                    };
                    file.rows.len()
                ]
            }
            (Kind::DoctorServices, Some(Ok(dir))) => {
                let outcomes =
                    agenda::send_offers(&api, &file.rows, dir, args.concurrency as usize)
                        .await
                        .with_context(|| format!("importing {}", kind.file()))?;
                bar.inc(file.rows.len() as u64);
                outcomes
            }
            (Kind::WorkingHours | Kind::AgendaExceptions, Some(Ok(dir))) => {
                let mut prepared: Vec<Prepared> = file
                    .rows
                    .iter()
                    .map(|row| agenda::prepare(kind, row, dir))
                    .collect();
                if kind == Kind::AgendaExceptions {
                    agenda::precheck_exceptions(&api, &mut prepared).await;
                }
                let items: Vec<Option<Value>> = prepared
                    .iter()
                    .map(|p| match p {
                        Prepared::Send(item) => Some(item.clone()),
                        Prepared::Done(_) => None,
                    })
                    .collect();
                let mut outcomes = send_all(&api, kind, prepared, &args, bar).await?;
                if kind == Kind::WorkingHours {
                    agenda::reconcile_hours(&api, &items, &mut outcomes).await;
                }
                outcomes
            }
            _ => {
                let prepared = file
                    .rows
                    .iter()
                    .map(|row| Prepared::Send(item(kind, row)))
                    .collect();
                send_all(&api, kind, prepared, &args, bar).await?
            }
        };
        let in_order = file.rows.into_iter().zip(outcomes);
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

/// Sends the rows still to send, in chunks (a few chunks in flight), and answers an outcome
/// per row, in order (rows already decided keep theirs).
async fn send_all(
    api: &Arc<Api>,
    kind: Kind,
    prepared: Vec<Prepared>,
    args: &ImportArgs,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(prepared.len());
    let mut to_send = Vec::new();
    for (index, p) in prepared.into_iter().enumerate() {
        match p {
            Prepared::Send(item) => {
                to_send.push((index, item));
                outcomes.push(None);
            }
            Prepared::Done(outcome) => {
                bar.inc(1);
                outcomes.push(Some(outcome));
            }
        }
    }
    let one_by_one = args.one_by_one;
    let chunks: Vec<Vec<(usize, Value)>> = to_send
        .chunks(args.chunk_size as usize)
        .map(<[(usize, Value)]>::to_vec)
        .collect();
    let mut results = stream::iter(chunks.into_iter().map(|chunk| {
        let api = api.clone();
        async move {
            let (indices, items): (Vec<usize>, Vec<Value>) = chunk.into_iter().unzip();
            let sent = send_chunk(&api, kind, items, one_by_one).await;
            (indices, sent)
        }
    }))
    .buffered(args.concurrency as usize);
    while let Some((indices, sent)) = results.next().await {
        let sent = sent.with_context(|| format!("importing {}", kind.file()))?;
        bar.inc(indices.len() as u64);
        for (index, outcome) in indices.into_iter().zip(sent) {
            outcomes[index] = Some(outcome);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every row is decided or sent"))
        .collect())
}
