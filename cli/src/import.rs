//! `citaflow import`: the initial load of the directory from CSV files, through the public
//! API, then one demo booking.
//!
//! Every file is read and checked before anything is sent (a missing file or a bad header
//! stops the import; a bad row never does). Rows go to the bulk endpoints in chunks, a few
//! chunks at a time, in dependency order (centers and users, then doctors and patients), and
//! each per-item result is mapped back to its file and line. Re-running is safe: every record
//! has a natural key the API keeps unique (center name, username, doctor username, patient
//! email), so a second run gets 409 `duplicate` for each row, counted as "already present".

use std::{
    collections::HashMap,
    fmt::{self, Write as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use futures_util::{StreamExt, stream};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::api::{Api, ApiArgs, encode_query, is_retryable_status};

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

/// The four files, in the order they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Centers,
    Users,
    Doctors,
    Patients,
}

struct Column {
    name: &'static str,
    required: bool,
}

const fn req(name: &'static str) -> Column {
    Column {
        name,
        required: true,
    }
}

const fn opt(name: &'static str) -> Column {
    Column {
        name,
        required: false,
    }
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Centers, Kind::Users, Kind::Doctors, Kind::Patients];

    fn file(self) -> &'static str {
        match self {
            Kind::Centers => "centers.csv",
            Kind::Users => "users.csv",
            Kind::Doctors => "doctors.csv",
            Kind::Patients => "patients.csv",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Kind::Centers => "centers",
            Kind::Users => "users",
            Kind::Doctors => "doctors",
            Kind::Patients => "patients",
        }
    }

    fn columns(self) -> &'static [Column] {
        const CENTERS: &[Column] = &[
            req("name"),
            req("address"),
            req("timezone"),
            opt("language"),
        ];
        const USERS: &[Column] = &[req("username"), req("role"), opt("password")];
        const DOCTORS: &[Column] = &[
            req("username"),
            req("name"),
            req("specialty"),
            opt("password"),
        ];
        const PATIENTS: &[Column] = &[
            req("email"),
            req("name"),
            opt("phone"),
            opt("language"),
            opt("status"),
            opt("username"),
            opt("password"),
        ];
        match self {
            Kind::Centers => CENTERS,
            Kind::Users => USERS,
            Kind::Doctors => DOCTORS,
            Kind::Patients => PATIENTS,
        }
    }

    /// The natural key of a row, normalised as the API compares it.
    fn key_column(self) -> &'static str {
        match self {
            Kind::Centers => "name",
            Kind::Users | Kind::Doctors => "username",
            Kind::Patients => "email",
        }
    }

    fn normalise_key(self, value: &str) -> String {
        match self {
            Kind::Centers => value.to_owned(),
            _ => value.to_lowercase(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file())
    }
}

/// One data row: where it came from and its cells by column name (empty cells left out).
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub cells: HashMap<&'static str, String>,
}

impl Row {
    fn get(&self, column: &str) -> Option<&str> {
        self.cells.get(column).map(String::as_str)
    }
}

/// A parsed file: rows ready to send and rows that failed locally.
#[derive(Debug)]
pub struct ParsedFile {
    pub kind: Kind,
    pub rows: Vec<Row>,
    pub failures: Vec<Failure>,
}

/// A row that did not go in.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: &'static str,
    pub line: u64,
    /// The API's error code, or `invalid_row` when the row was refused before sending.
    pub code: String,
    pub reason: String,
}

fn local_failure(kind: Kind, line: u64, reason: impl Into<String>) -> Failure {
    Failure {
        file: kind.file(),
        line,
        code: "invalid_row".into(),
        reason: reason.into(),
    }
}

/// Reads and checks one CSV file. File-level problems (missing, unreadable, bad header) are
/// errors; row-level problems become [`Failure`]s and the other rows go on.
pub fn parse_file(kind: Kind, path: &Path) -> anyhow::Result<ParsedFile> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let header = reader
        .byte_headers()
        .map_err(|e| anyhow!("{}: cannot read the header: {e}", path.display()))?
        .clone();
    let expected = kind.columns();
    let expected_names = || {
        expected
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        bail!(
            "{}: the file is empty; its first line must be the header ({})",
            path.display(),
            expected_names()
        );
    }
    // Column index → column, checked: every column known, none twice, every required one present.
    let mut positions: Vec<&'static str> = Vec::with_capacity(header.len());
    for raw in header.iter() {
        let name = String::from_utf8_lossy(raw)
            .trim_start_matches('\u{feff}')
            .trim()
            .to_lowercase();
        let Some(column) = expected.iter().find(|c| c.name == name) else {
            bail!(
                "{}: unknown column {name:?} in the header (expected: {})",
                path.display(),
                expected_names()
            );
        };
        if positions.contains(&column.name) {
            bail!(
                "{}: column {name:?} appears twice in the header",
                path.display()
            );
        }
        positions.push(column.name);
    }
    if let Some(missing) = expected
        .iter()
        .find(|c| c.required && !positions.contains(&c.name))
    {
        bail!(
            "{}: the header has no {:?} column (expected: {})",
            path.display(),
            missing.name,
            expected_names()
        );
    }

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut keys: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line_hint = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => bail!("{}: reading failed: {e}", path.display()),
                _ => {
                    let line = e
                        .position()
                        .map(|p| line_of(&bytes, p))
                        .unwrap_or(line_hint);
                    failures.push(local_failure(kind, line, format!("not valid CSV: {e}")));
                    continue;
                }
            },
        }
        let line = record
            .position()
            .map(|p| line_of(&bytes, p))
            .unwrap_or(line_hint);
        if record.len() != positions.len() {
            failures.push(local_failure(
                kind,
                line,
                format!(
                    "has {} field(s), the header has {}",
                    record.len(),
                    positions.len()
                ),
            ));
            continue;
        }
        let mut cells = HashMap::new();
        let mut bad_utf8 = None;
        for (column, raw) in positions.iter().zip(record.iter()) {
            match std::str::from_utf8(raw) {
                Ok("") => {}
                Ok(value) => {
                    cells.insert(*column, value.to_owned());
                }
                Err(_) => bad_utf8 = Some(*column),
            }
        }
        if let Some(column) = bad_utf8 {
            failures.push(local_failure(
                kind,
                line,
                format!("{column}: not valid UTF-8 (save the file as UTF-8)"),
            ));
            continue;
        }
        let key_column = kind.key_column();
        let Some(key) = cells.get(key_column).map(|k| kind.normalise_key(k)) else {
            failures.push(local_failure(
                kind,
                line,
                format!("{key_column}: is required (it identifies the row, so a second import does not duplicate it)"),
            ));
            continue;
        };
        if let Some(first) = keys.get(&key) {
            failures.push(local_failure(
                kind,
                line,
                format!("{key_column}: the same as line {first} of this file"),
            ));
            continue;
        }
        keys.insert(key, line);
        rows.push(Row { line, cells });
    }
    Ok(ParsedFile {
        kind,
        rows,
        failures,
    })
}

/// The line a record starts on. The reader's position is where it started reading the record,
/// which is before any blank lines it skipped; those are counted here.
fn line_of(bytes: &[u8], position: &csv::Position) -> u64 {
    let start = (position.byte() as usize).min(bytes.len());
    let blank = bytes[start..]
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() + blank as u64
}

/// The JSON item the API expects for a row. Required cells are always sent (empty when
/// missing, so the API's own validation names them); empty optional cells are left out.
pub fn item(kind: Kind, row: &Row) -> Value {
    let mut item = Map::new();
    for column in kind.columns() {
        let value = row.get(column.name);
        match (column.name, value) {
            ("role", Some(role)) => {
                item.insert("role".into(), Value::String(role.to_lowercase()));
            }
            ("password", None) if kind == Kind::Users => {
                // Staff users need a password; one nobody knows keeps the account closed until
                // an admin sets a real one.
                let random = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
                item.insert("password".into(), Value::String(random));
            }
            (name, Some(value)) => {
                item.insert(name.into(), Value::String(value.to_owned()));
            }
            (name, None) if column.required => {
                item.insert(name.into(), Value::String(String::new()));
            }
            (_, None) => {}
        }
    }
    Value::Object(item)
}

/// What happened to one row.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created,
    Present,
    Failed { code: String, reason: String },
}

/// Counts of one file.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FileReport {
    pub file: &'static str,
    pub rows: usize,
    pub created: usize,
    pub already_present: usize,
    pub failed: usize,
}

/// Sends one chunk and answers an outcome per row, in order. `Err` only for failures that make
/// going on pointless (API unreachable, credentials refused).
async fn send_chunk(
    api: &Api,
    kind: Kind,
    items: Vec<Value>,
    one_by_one: bool,
) -> anyhow::Result<Vec<Outcome>> {
    if one_by_one {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in &items {
            let reply = send_retrying(api, kind.resource(), item).await?;
            outcomes.push(match reply.status {
                StatusCode::CREATED | StatusCode::OK => Outcome::Created,
                _ if reply.code() == Some("duplicate") => Outcome::Present,
                _ => Outcome::Failed {
                    code: reply.code().unwrap_or("http_error").into(),
                    reason: reply.reason(),
                },
            });
        }
        return Ok(outcomes);
    }
    let count = items.len();
    let reply = send_retrying(
        api,
        &format!("{}/bulk", kind.resource()),
        &Value::Array(items),
    )
    .await?;
    if reply.status != StatusCode::OK {
        // The whole request was refused (e.g. too large): every row of the chunk failed so.
        let failed = Outcome::Failed {
            code: reply.code().unwrap_or("http_error").into(),
            reason: reply.reason(),
        };
        return Ok(vec![failed; count]);
    }
    let mut outcomes = vec![
        Outcome::Failed {
            code: "no_result".into(),
            reason: "the API's bulk answer has no result for this row".into()
        };
        count
    ];
    for result in reply.body["results"].as_array().into_iter().flatten() {
        let Some(index) = result["index"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|i| *i < count)
        else {
            continue;
        };
        outcomes[index] = match result["status"].as_str() {
            Some("created") => Outcome::Created,
            _ if result["error"]["code"] == "duplicate" => Outcome::Present,
            _ => Outcome::Failed {
                code: result["error"]["code"].as_str().unwrap_or("error").into(),
                reason: crate::api::error_reason(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({ "error": result["error"] }),
                ),
            },
        };
    }
    Ok(outcomes)
}

/// POSTs `body`, retrying a few times when the API is briefly unavailable. Resending is safe:
/// rows that did go in answer 409 `duplicate` the second time.
async fn send_retrying(api: &Api, path: &str, body: &Value) -> anyhow::Result<crate::api::Reply> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = api.send(Method::POST, path, Some(body)).await;
        match result {
            Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                bail!("the API refused the credentials (401) while importing; log in again")
            }
            Ok(reply) if is_retryable_status(reply.status) && attempt < 4 => {}
            Ok(reply) => return Ok(reply),
            Err(e) if attempt < 4 && !e.to_string().starts_with("cannot reach") => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
    }
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

    let progress = if args.json || args.quiet {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new() // draws on stderr, and only when it is a terminal
    };
    let style = ProgressStyle::with_template("{prefix:>13} [{bar:30}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
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
        match demo_booking(&api, &present).await {
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

/// The report as text: a table per file, the failed rows, the demo appointment.
fn render_report(report: &ImportReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>6} {:>8} {:>16} {:>7}",
        "FILE", "ROWS", "CREATED", "ALREADY PRESENT", "FAILED"
    );
    for f in &report.files {
        let _ = writeln!(
            out,
            "{:<14} {:>6} {:>8} {:>16} {:>7}",
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

/// Reason written on the demo appointment, which is how a later run recognises it.
const DEMO_REASON: &str = "Cita de demostración (citaflow import)";
const DEMO_MINUTES: i64 = 30;

/// Books one appointment with the first center, doctor and active patient of the files (or
/// finds the one an earlier run booked). Answers the booking and whether it already existed.
async fn demo_booking(
    api: &Api,
    present: &HashMap<Kind, Vec<Row>>,
) -> anyhow::Result<(Value, bool)> {
    let rows = |kind: Kind| present.get(&kind).map(Vec::as_slice).unwrap_or_default();
    // Ids come from the API by natural key: the CSVs never carry them.
    let center_row = rows(Kind::Centers)
        .first()
        .context("no center of centers.csv is in the API")?;
    let center_name = center_row.get("name").unwrap_or_default();
    let centers = api
        .list_all(&format!("centers?q={}", encode_query(center_name)), 1000)
        .await?;
    let center = centers
        .into_iter()
        .find(|c| c["name"].as_str().map(str::trim) == Some(center_name))
        .with_context(|| format!("center {center_name:?} not found through GET /centers"))?;

    let doctor_row = rows(Kind::Doctors)
        .first()
        .context("no doctor of doctors.csv is in the API")?;
    let doctor_username = doctor_row
        .get("username")
        .unwrap_or_default()
        .to_lowercase();
    let users = api
        .list_all(
            &format!("users?role=doctor&q={}", encode_query(&doctor_username)),
            1000,
        )
        .await?;
    let user_id = users
        .iter()
        .find(|u| u["username"].as_str() == Some(&doctor_username))
        .and_then(|u| u["id"].as_str())
        .with_context(|| format!("doctor user {doctor_username:?} not found through GET /users"))?
        .to_owned();
    let doctor_name = doctor_row.get("name").unwrap_or_default();
    let doctors = api
        .list_all(&format!("doctors?q={}", encode_query(doctor_name)), 1000)
        .await?;
    let doctor = doctors
        .into_iter()
        .find(|d| d["user_id"].as_str() == Some(&user_id))
        .with_context(|| format!("doctor {doctor_username:?} not found through GET /doctors"))?;
    if doctor["active"] == false {
        bail!("doctor {doctor_username:?} is inactive");
    }

    let mut patient = None;
    for row in rows(Kind::Patients) {
        if row
            .get("status")
            .is_some_and(|s| !s.eq_ignore_ascii_case("ACTIVE"))
        {
            continue;
        }
        let email = row.get("email").unwrap_or_default();
        let found = api
            .list_all(
                &format!("patients?status=ACTIVE&email={}", encode_query(email)),
                10,
            )
            .await?;
        if let Some(p) = found.into_iter().next() {
            patient = Some(p);
            break;
        }
    }
    let patient = patient.context("no active patient of patients.csv is in the API")?;

    let ids = |v: &Value| {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .context("record without an id")
    };
    let (center_id, doctor_id, patient_id) = (ids(&center)?, ids(&doctor)?, ids(&patient)?);

    // Bookings this doctor already has from tomorrow on: an earlier demo booking is reused, and
    // busy slots are skipped.
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let agenda = api
        .list_all(
            &format!("bookings?doctor_id={doctor_id}&from={tomorrow}"),
            10_000,
        )
        .await?;
    if let Some(existing) = agenda.iter().find(|b| {
        b["patient_id"].as_str() == Some(&patient_id)
            && b["reason"].as_str() == Some(DEMO_REASON)
            && matches!(b["status"].as_str(), Some("confirmed" | "pending"))
    }) {
        return Ok((existing.clone(), true));
    }
    let busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = agenda
        .iter()
        .filter(|b| matches!(b["status"].as_str(), Some("confirmed" | "pending")))
        .filter_map(|b| {
            Some((
                b["starts_at"].as_str()?.parse().ok()?,
                b["ends_at"].as_str()?.parse().ok()?,
            ))
        })
        .collect();
    let tz: chrono_tz::Tz = center["timezone"]
        .as_str()
        .unwrap_or("Europe/Madrid")
        .parse()
        .unwrap_or(chrono_tz::Europe::Madrid);

    let mut tries = 0;
    for start in candidate_slots(tz, Utc::now()) {
        let end = start + chrono::Duration::minutes(DEMO_MINUTES);
        if busy.iter().any(|(s, e)| *s < end && start < *e) {
            continue;
        }
        tries += 1;
        if tries > 5 {
            break;
        }
        let body = json!({
            "patient_id": patient_id, "doctor_id": doctor_id, "center_id": center_id,
            "start": start.to_rfc3339(), "duration_minutes": DEMO_MINUTES, "reason": DEMO_REASON,
        });
        let reply = api
            .send_with(Method::POST, "bookings", Some(&body), Some(10))
            .await?;
        match reply.status {
            StatusCode::CREATED => return Ok((reply.body, false)),
            StatusCode::ACCEPTED => {
                let id = reply.body["booking_id"]
                    .as_str()
                    .context("202 without booking_id")?
                    .to_owned();
                return Ok((wait_decided(api, &id).await?, false));
            }
            StatusCode::CONFLICT
                if reply.body["error"]["details"]["reason_code"] == "slot_taken" =>
            {
                continue;
            }
            status => bail!("POST /bookings: {} ({status})", reply.reason()),
        }
    }
    bail!("no free slot found for the demo appointment in the next weeks")
}

/// Polls a booking until it is decided (the processor may be slow right after a start).
async fn wait_decided(api: &Api, id: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = api
            .send(Method::GET, &format!("bookings/{id}"), None)
            .await?;
        if reply.status == StatusCode::OK && reply.body["status"] != "pending" {
            if reply.body["status"] == "confirmed" {
                return Ok(reply.body);
            }
            bail!(
                "the demo booking was {}: {}",
                reply.body["status"],
                reply.body["reason_message"]
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "booking {id} is still pending after 40 s: is the booking processor running? (`./dev status`)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Weekday-morning 30-minute slots (09:00–13:30 in the center's time zone), from tomorrow on,
/// for four weeks.
pub fn candidate_slots(
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Utc>> {
    let first_day = now.with_timezone(&tz).date_naive() + chrono::Duration::days(1);
    (0..28)
        .map(move |d| first_day + chrono::Duration::days(d))
        .filter(|day| !matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
        .flat_map(move |day| {
            (0..10).filter_map(move |i| {
                let time = NaiveTime::from_hms_opt(9, 0, 0)? + chrono::Duration::minutes(30 * i);
                tz.from_local_datetime(&day.and_time(time))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("citaflow-import-unit-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn rows_keep_their_lines_and_bad_rows_are_reported_not_fatal() {
        let dir = temp_dir();
        let path = write(
            &dir,
            "patients.csv",
            "\u{feff}Email, name ,phone\n\
             ana@example.com,Ana,+34600000001\n\
             \n\
             \r\n\
             ,Sin Email,\n\
             luis@example.com,\"Luis\nPérez\",\n\
             ANA@example.com,Ana otra vez,\n\
             too,many,fields,here\n\
             bea@example.com,Bea,\n",
        );
        let parsed = parse_file(Kind::Patients, &path).unwrap();
        let lines: Vec<u64> = parsed.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 6, 10]);
        let failed: Vec<(u64, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.line, f.reason.as_str()))
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert_eq!(failed[0].0, 5);
        assert!(failed[0].1.starts_with("email: is required"));
        assert_eq!(failed[1], (8, "email: the same as line 2 of this file"));
        assert_eq!(failed[2], (9, "has 4 field(s), the header has 3"));
        assert_eq!(parsed.rows[1].get("name"), Some("Luis\nPérez"));
        assert_eq!(parsed.rows[0].get("name"), Some("Ana"));
        assert_eq!(
            parsed.rows[2].get("phone"),
            None,
            "empty optional cells are left out"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_headers_stop_the_file() {
        let dir = temp_dir();
        let unknown = write(&dir, "a.csv", "username,role,pasword\nx,admin,\n");
        let err = parse_file(Kind::Users, &unknown).unwrap_err().to_string();
        assert!(err.contains("unknown column \"pasword\""), "{err}");
        let missing = write(&dir, "b.csv", "username\nx\n");
        assert!(
            parse_file(Kind::Users, &missing)
                .unwrap_err()
                .to_string()
                .contains("no \"role\" column")
        );
        let empty = write(&dir, "c.csv", "");
        assert!(
            parse_file(Kind::Users, &empty)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            parse_file(Kind::Users, &dir.join("nope.csv"))
                .unwrap_err()
                .to_string()
                .contains("cannot open")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn items_match_the_api_and_users_get_a_hidden_password() {
        let row = |cells: &[(&'static str, &str)]| Row {
            line: 2,
            cells: cells.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        let user = item(
            Kind::Users,
            &row(&[("username", "ana"), ("role", "Secretary")]),
        );
        assert_eq!(user["role"], "secretary");
        assert!(user["password"].as_str().unwrap().len() >= 32);
        let doctor = item(Kind::Doctors, &row(&[("username", "dr.ana")]));
        assert_eq!(
            doctor,
            json!({"username": "dr.ana", "name": "", "specialty": ""}),
            "required cells are sent, empty"
        );
        let patient = item(
            Kind::Patients,
            &row(&[
                ("email", "a@example.com"),
                ("name", "Ana"),
                ("status", "INACTIVE"),
            ]),
        );
        assert_eq!(
            patient,
            json!({"email": "a@example.com", "name": "Ana", "status": "INACTIVE"})
        );
    }

    #[test]
    fn demo_slots_are_weekday_mornings_in_the_center_zone() {
        let now = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(); // a Friday
        let slots: Vec<_> = candidate_slots(chrono_tz::Atlantic::Canary, now)
            .take(11)
            .collect();
        // Monday 30 March 2026, 09:00 in the Canaries (UTC+1 in summer time) is 08:00 UTC.
        assert_eq!(
            slots[0],
            Utc.with_ymd_and_hms(2026, 3, 30, 8, 0, 0).unwrap()
        );
        assert_eq!(
            slots[9],
            Utc.with_ymd_and_hms(2026, 3, 30, 12, 30, 0).unwrap()
        );
        assert_eq!(
            slots[10],
            Utc.with_ymd_and_hms(2026, 3, 31, 8, 0, 0).unwrap()
        );
    }
}
