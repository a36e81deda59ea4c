//! The import's CSV files: which columns each has and which identify a row, reading and
//! checking a file (header first, then row by row, each row keeping its line number), and the
//! rows that failed before anything was sent.

use std::{collections::HashMap, fmt, path::Path};

use anyhow::{anyhow, bail};
use serde::Serialize;

/// The files, in the order they are sent: the directory first, then the agenda, whose rows
/// name directory records by their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Centers,
    Users,
    Doctors,
    Patients,
    Services,
    DoctorServices,
    WorkingHours,
    AgendaExceptions,
}

/// A column of a file, and whether every row needs it.
pub struct Column {
    pub name: &'static str,
    pub required: bool,
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
    pub const ALL: [Kind; 8] = [
        Kind::Centers,
        Kind::Users,
        Kind::Doctors,
        Kind::Patients,
        Kind::Services,
        Kind::DoctorServices,
        Kind::WorkingHours,
        Kind::AgendaExceptions,
    ];

    pub fn file(self) -> &'static str {
        match self {
            Kind::Centers => "centers.csv",
            Kind::Users => "users.csv",
            Kind::Doctors => "doctors.csv",
            Kind::Patients => "patients.csv",
            Kind::Services => "services.csv",
            Kind::DoctorServices => "doctor_services.csv",
            Kind::WorkingHours => "working_hours.csv",
            Kind::AgendaExceptions => "agenda_exceptions.csv",
        }
    }

    /// The API collection rows are created in (`POST /<resource>` and `/<resource>/bulk`).
    /// Offers have none: they are set per service (`PUT /services/{id}/doctors`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Centers => "centers",
            Kind::Users => "users",
            Kind::Doctors => "doctors",
            Kind::Patients => "patients",
            Kind::Services | Kind::DoctorServices => "services",
            Kind::WorkingHours => "working-hours",
            Kind::AgendaExceptions => "agenda-exceptions",
        }
    }

    /// Whether the rows name directory records (doctors, centers, services) that must be
    /// looked up to ids before sending.
    pub fn has_references(self) -> bool {
        matches!(
            self,
            Kind::DoctorServices | Kind::WorkingHours | Kind::AgendaExceptions
        )
    }

    pub fn columns(self) -> &'static [Column] {
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
        const SERVICES: &[Column] = &[
            req("name"),
            req("duration_minutes"),
            opt("buffer_before_minutes"),
            opt("buffer_after_minutes"),
        ];
        const DOCTOR_SERVICES: &[Column] = &[req("doctor"), req("service")];
        const WORKING_HOURS: &[Column] = &[
            req("doctor"),
            req("center"),
            req("weekday"),
            req("start"),
            req("end"),
            opt("valid_from"),
            opt("valid_until"),
        ];
        const AGENDA_EXCEPTIONS: &[Column] = &[
            req("doctor"),
            req("kind"),
            req("date"),
            opt("center"),
            opt("start"),
            opt("end"),
            opt("note"),
        ];
        match self {
            Kind::Centers => CENTERS,
            Kind::Users => USERS,
            Kind::Doctors => DOCTORS,
            Kind::Patients => PATIENTS,
            Kind::Services => SERVICES,
            Kind::DoctorServices => DOCTOR_SERVICES,
            Kind::WorkingHours => WORKING_HOURS,
            Kind::AgendaExceptions => AGENDA_EXCEPTIONS,
        }
    }

    /// The columns that identify a row. The directory's and the services' are the natural
    /// keys the API keeps unique; the agenda files' are the whole meaning of the row (the API
    /// keeps no key for them, the import compares them with what is there).
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Kind::Centers | Kind::Services => &["name"],
            Kind::Users | Kind::Doctors => &["username"],
            Kind::Patients => &["email"],
            Kind::DoctorServices => &["doctor", "service"],
            Kind::WorkingHours => &[
                "doctor",
                "center",
                "weekday",
                "start",
                "end",
                "valid_from",
                "valid_until",
            ],
            Kind::AgendaExceptions => &["doctor", "kind", "date", "center", "start", "end"],
        }
    }

    /// A key cell normalised as the API compares it.
    pub fn normalise_key(self, value: &str) -> String {
        match self {
            Kind::Centers => value.to_owned(),
            _ => value.to_lowercase(),
        }
    }

    /// Whether `column` is required in this file.
    fn requires(self, column: &str) -> bool {
        self.columns()
            .iter()
            .any(|c| c.name == column && c.required)
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
    pub fn get(&self, column: &str) -> Option<&str> {
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
        let key_columns = kind.key_columns();
        if let Some(missing) = key_columns
            .iter()
            .find(|c| kind.requires(c) && !cells.contains_key(*c))
        {
            failures.push(local_failure(
                kind,
                line,
                format!("{missing}: is required (it identifies the row, so a second import does not duplicate it)"),
            ));
            continue;
        }
        // Optional key cells count as empty; the unit separator cannot appear in a cell that
        // matters, so joined keys compare like tuples.
        let key = key_columns
            .iter()
            .map(|c| kind.normalise_key(cells.get(c).map(String::as_str).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\u{1f}");
        if let Some(first) = keys.get(&key) {
            failures.push(local_failure(
                kind,
                line,
                if key_columns.len() == expected.len() {
                    format!("the same as line {first} of this file")
                } else {
                    format!(
                        "{}: the same as line {first} of this file",
                        key_columns.join(", ")
                    )
                },
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use uuid::Uuid;

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
    fn agenda_rows_are_keyed_by_what_they_mean() {
        let dir = temp_dir();
        let path = write(
            &dir,
            "agenda_exceptions.csv",
            "doctor,kind,date,center,start,end,note\n\
             dr.ana,time_off,2027-01-07,,,,Asuntos propios\n\
             DR.ANA,TIME_OFF,2027-01-07,,,,otra nota\n\
             dr.ana,time_off,2027-01-07,,09:00,11:30,\n\
             ,extra,2027-01-08,Centro,16:00,19:00,\n",
        );
        let parsed = parse_file(Kind::AgendaExceptions, &path).unwrap();
        assert_eq!(
            parsed.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 4]
        );
        let failed: Vec<(u64, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.line, f.reason.as_str()))
            .collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert_eq!(
            failed[0],
            (
                3,
                "doctor, kind, date, center, start, end: the same as line 2 of this file"
            ),
            "the note is not part of the key"
        );
        assert_eq!(failed[1].0, 5);
        assert!(failed[1].1.starts_with("doctor: is required"));

        let hours = write(
            &dir,
            "working_hours.csv",
            "doctor,center,weekday,start,end\n\
             dr.ana,Centro,monday,09:00,14:00\n\
             dr.ana,Centro,Monday,09:00,14:00\n",
        );
        let parsed = parse_file(Kind::WorkingHours, &hours).unwrap();
        assert_eq!(parsed.failures[0].reason, "the same as line 2 of this file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The shipped data parses without a failed row, and every reference of the agenda files
    /// names a record of the directory files.
    #[test]
    fn the_shipped_agenda_names_the_shipped_directory() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        let files: HashMap<Kind, ParsedFile> = Kind::ALL
            .into_iter()
            .map(|kind| (kind, parse_file(kind, &data.join(kind.file())).unwrap()))
            .collect();
        for file in files.values() {
            assert!(file.failures.is_empty(), "{:?}", file.failures);
            assert!(!file.rows.is_empty(), "{} is empty", file.kind);
        }
        let keys = |kind: Kind, column: &str| -> std::collections::HashSet<String> {
            files[&kind]
                .rows
                .iter()
                .map(|r| r.get(column).unwrap().to_lowercase())
                .collect()
        };
        let doctors = keys(Kind::Doctors, "username");
        let centers = keys(Kind::Centers, "name");
        let services = keys(Kind::Services, "name");
        for kind in [
            Kind::DoctorServices,
            Kind::WorkingHours,
            Kind::AgendaExceptions,
        ] {
            for row in &files[&kind].rows {
                let at = format!("{}:{}", kind.file(), row.line);
                assert!(
                    doctors.contains(&row.get("doctor").unwrap().to_lowercase()),
                    "{at}"
                );
                if let Some(center) = row.get("center") {
                    assert!(centers.contains(&center.to_lowercase()), "{at}");
                }
                if let Some(service) = row.get("service") {
                    assert!(services.contains(&service.to_lowercase()), "{at}");
                }
            }
        }
        // Every doctor offers a service and works somewhere.
        assert_eq!(keys(Kind::DoctorServices, "doctor"), doctors);
        assert_eq!(keys(Kind::WorkingHours, "doctor"), doctors);
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
}
