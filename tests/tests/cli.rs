//! The `citaflow` client against a test's own API: `import` of the shipped data (twice, the
//! directory and the agenda, then the demo booking at the first free slot), broken rows
//! reported exactly, clear failures on bad input and credentials, and a short `load` run whose
//! JSON agrees with the database.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use citaflow_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, Services, TestApp, process};
use serde_json::Value;
use uuid::Uuid;

fn shipped_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// A fresh folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("citaflow-cli-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The agenda files with their header only (a folder without agenda).
    fn write_no_agenda(&self) {
        self.write(
            "services.csv",
            "name,duration_minutes,buffer_before_minutes,buffer_after_minutes\n",
        );
        self.write("doctor_services.csv", "doctor,service\n");
        self.write(
            "working_hours.csv",
            "doctor,center,weekday,start,end,valid_from,valid_until\n",
        );
        self.write(
            "agenda_exceptions.csv",
            "doctor,kind,date,center,start,end,note\n",
        );
    }
}

/// Every file the import reads, in its order.
const FILES: [&str; 8] = [
    "centers.csv",
    "users.csv",
    "doctors.csv",
    "patients.csv",
    "services.csv",
    "doctor_services.csv",
    "working_hours.csv",
    "agenda_exceptions.csv",
];

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `citaflow` with this test's API and only the environment given (no credentials leak in
/// from the caller's shell).
fn cli_env(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(process::binary("citaflow"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CITAFLOW") {
            command.env_remove(key);
        }
    }
    command
        .env("CITAFLOW_API_URL", &app.api_url)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run citaflow")
}

/// `citaflow import --json` with the test admin's token.
fn import(app: &TestApp, dir: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "import",
        "--dir",
        dir,
        "--token",
        &app.admin_token,
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = cli_env(app, &args, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("import did not print JSON ({e}): {output:?}"));
    (output.status.code(), report, stderr)
}

/// Data rows of a shipped CSV (one record per line in the shipped files).
fn data_rows(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(shipped_data().join(file)).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Directory, agenda and appointment counts that an import may change.
async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM centers",
        "SELECT count(*) FROM doctors",
        "SELECT count(*) FROM patients",
        "SELECT count(*) FROM patients WHERE status = 'INACTIVE'",
        "SELECT count(*) FROM users WHERE role = 'admin'",
        "SELECT count(*) FROM users WHERE role = 'secretary'",
        "SELECT count(*) FROM users WHERE role = 'doctor'",
        "SELECT count(*) FROM users WHERE role = 'patient'",
        "SELECT count(*) FROM services",
        "SELECT count(*) FROM doctor_services",
        "SELECT count(*) FROM working_hours",
        "SELECT count(*) FROM agenda_exceptions",
        "SELECT count(*) FROM appointments",
    ] {
        counts.push(count(app, sql).await);
    }
    counts
}

fn file_report<'a>(report: &'a Value, file: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap_or_else(|| panic!("no {file} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_loads_the_shipped_data_books_once_and_a_second_run_adds_nothing() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let data = shipped_data();

    let (code, first, stderr) = import(&app, data.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "first import: {first:#}\n{stderr}");
    assert_eq!(first["failures"], Value::Array(vec![]), "{first:#}");
    for file in FILES {
        let rows = data_rows(file).len();
        let r = file_report(&first, file);
        assert_eq!(
            (
                r["rows"].as_u64(),
                r["created"].as_u64(),
                r["already_present"].as_u64()
            ),
            (Some(rows as u64), Some(rows as u64), Some(0)),
            "{file}: {r}"
        );
    }

    // Everything is in the database, with the roles and statuses of the files.
    let patients = data_rows("patients.csv");
    let inactive = patients.iter().filter(|l| l.ends_with(",INACTIVE")).count() as i64;
    assert!(inactive > 0, "the shipped data has inactive patients");
    let users = data_rows("users.csv");
    let staff = |role: &str| {
        users
            .iter()
            .filter(|l| l.ends_with(&format!(",{role}")))
            .count() as i64
    };
    let after_first = snapshot(&app).await;
    assert_eq!(
        after_first,
        vec![
            data_rows("centers.csv").len() as i64,
            data_rows("doctors.csv").len() as i64,
            patients.len() as i64,
            inactive,
            staff("admin") + 1, // + the test's own admin
            staff("secretary"),
            data_rows("doctors.csv").len() as i64,
            patients.len() as i64,
            data_rows("services.csv").len() as i64,
            data_rows("doctor_services.csv").len() as i64,
            data_rows("working_hours.csv").len() as i64,
            data_rows("agenda_exceptions.csv").len() as i64,
            1,
        ]
    );
    // The agenda went in as written: a buffered service, a doctor at two centers in two time
    // zones, a whole day off at one center.
    assert_eq!(
        count(&app, "SELECT count(*) FROM services WHERE name = 'Endodoncia' AND duration_minutes = 90 AND buffer_before_minutes = 10 AND buffer_after_minutes = 15").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(DISTINCT c.timezone) FROM working_hours w JOIN centers c ON c.id = w.center_id
                      JOIN doctors d ON d.id = w.doctor_id JOIN users u ON u.id = d.user_id
                     WHERE u.username = 'dr.ivan.cano'").await,
        2
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM agenda_exceptions e JOIN centers c ON c.id = e.center_id
                     WHERE e.kind = 'time_off' AND e.date = '2027-02-02' AND e.start_minute IS NULL
                       AND c.name = 'OdontoCare Santa Cruz de Tenerife'"
        )
        .await,
        data_rows("agenda_exceptions.csv")
            .iter()
            .filter(|l| l.contains(",2027-02-02,OdontoCare Santa Cruz de Tenerife,,,"))
            .count() as i64
    );

    // The demo appointment: confirmed, with the first doctor and active patient, for the first
    // service of services.csv the doctor offers, at one of the doctor's centers, lasting what
    // the service lasts.
    assert_eq!(first["booking_status"], "booked", "{first:#}");
    let booking = &first["booking"];
    assert_eq!(booking["status"], "confirmed", "{booking}");
    let (center, doctor_user, email, service, minutes): (String, String, String, String, f64) =
        sqlx::query_as(
            "SELECT c.name, u.username, p.email, s.name,
                    extract(epoch FROM a.ends_at - a.starts_at)::float8 / 60
               FROM appointments a
               JOIN centers c ON c.id = a.center_id JOIN doctors d ON d.id = a.doctor_id
               JOIN users u ON u.id = d.user_id JOIN patients p ON p.id = a.patient_id
               JOIN services s ON s.id = a.service_id
              WHERE a.id = $1::uuid AND a.status = 'confirmed'",
        )
        .bind(booking["id"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        data_rows("doctors.csv")[0].starts_with(&format!("{doctor_user},")),
        "{doctor_user}"
    );
    let first_active = patients.iter().find(|l| l.ends_with(",ACTIVE")).unwrap();
    assert!(
        first_active.starts_with(&format!("{email},")),
        "{email} vs {first_active}"
    );
    let offers: Vec<String> = data_rows("doctor_services.csv")
        .into_iter()
        .filter_map(|l| Some(l.strip_prefix(&format!("{doctor_user},"))?.to_owned()))
        .collect();
    let first_offered = data_rows("services.csv")
        .into_iter()
        .find(|l| offers.iter().any(|o| l.starts_with(&format!("{o},"))))
        .unwrap();
    assert!(
        first_offered.starts_with(&format!("{service},{},", minutes as i64)),
        "{service} for {minutes} min vs {first_offered}"
    );
    assert!(
        data_rows("working_hours.csv")
            .iter()
            .any(|l| l.starts_with(&format!("{doctor_user},{center},"))),
        "{doctor_user} has no hours at {center}"
    );
    // It took the first free slot: what the same search offers now all starts later.
    let booked_at: chrono::DateTime<chrono::Utc> =
        booking["starts_at"].as_str().unwrap().parse().unwrap();
    let today = chrono::Utc::now().date_naive();
    let search = app
        .get(&format!(
            "/availability?service_id={}&doctor_id={}&from={today}&to={}",
            booking["service_id"].as_str().unwrap(),
            booking["doctor_id"].as_str().unwrap(),
            today + chrono::Duration::days(13)
        ))
        .await;
    assert_eq!(search.status(), 200);
    let search: Value = search.json().await.unwrap();
    let starts: Vec<chrono::DateTime<chrono::Utc>> = search["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["slots"].as_array().unwrap())
        .map(|s| s["start"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(!starts.is_empty(), "{search:#}");
    assert!(
        starts.iter().all(|s| *s > booked_at),
        "a slot before the demo booking at {booked_at} was free: {starts:?}"
    );

    // Again: every row is already present, nothing is added, the same appointment is shown.
    let (code, second, stderr) = import(&app, data.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "second import: {second:#}\n{stderr}");
    for file in FILES {
        let rows = data_rows(file).len() as u64;
        let r = file_report(&second, file);
        assert_eq!(
            (
                r["created"].as_u64(),
                r["already_present"].as_u64(),
                r["failed"].as_u64()
            ),
            (Some(0), Some(rows), Some(0)),
            "{file}: {r}"
        );
    }
    assert_eq!(second["booking_status"], "existing", "{second:#}");
    assert_eq!(second["booking"]["id"], booking["id"]);
    assert_eq!(
        snapshot(&app).await,
        after_first,
        "the second import changed the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rows_are_reported_exactly_and_the_others_go_in() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let dir = TempDir::new();
    dir.write(
        "centers.csv",
        "name,address,timezone,language\n\
         Centro Bueno,Calle Mayor 1,Europe/Madrid,es\n\
         Centro Atlántida,Calle Perdida 1,Europe/Atlantis,es\n\
         Centro Canario,\"Calle Triana 95, Las Palmas\",Atlantic/Canary,\n\
         Centro Francés,Rue de Metz 3,Europe/Paris,fr\n",
    );
    dir.write(
        "users.csv",
        "username,role,password\n\
         recepcion.test,secretary,\n\
         dr.intruso,doctor,\n\
         corta,secretary,short\n",
    );
    dir.write(
        "doctors.csv",
        "username,name,specialty\n\
         dr.ana.test,Dra. Ana Test,Odontología\n\
         ,Dr. Sin Usuario,Pediatría\n\
         dr.sin.especialidad,Dr. Sin Especialidad,\n\
         dr.luis.test,Dr. Luis Test,Dermatología\n",
    );
    dir.write(
        "patients.csv",
        "email,name,phone,language,status\n\
         uno@example.com,Paciente Uno,+34600000001,es,ACTIVE\n\
         telefono.roto@example.com,Teléfono Roto,600123456,es,ACTIVE\n\
         \n\
         no-es-un-email,Email Roto,+34600000003,es,ACTIVE\n\
         dos@example.org,\"Paciente\nDos\",+34600000002,en,ACTIVE\n\
         estado@example.com,Estado Raro,+34600000004,es,MAYBE\n\
         campos@example.com,Campos De Más,+34600000005,es,ACTIVE,extra\n\
         UNO@example.com,Uno Repetido,+34600000006,es,ACTIVE\n\
         tres@example.net,Paciente Tres,+34 600 000 003,en,INACTIVE\n\
         cuatro@example.net,Paciente Cuatro,,,\n",
    );
    dir.write(
        "services.csv",
        "name,duration_minutes,buffer_after_minutes\n\
         Revisión,30,\n\
         Limpieza,45,10\n\
         revisión,20,\n",
    );
    dir.write(
        "doctor_services.csv",
        "doctor,service\n\
         dr.ana.test,Revisión\n\
         dr.nadie,Revisión\n\
         DR.LUIS.TEST,limpieza\n\
         dr.ana.test,Ortodoncia\n\
         dr.ana.test,revisión\n",
    );
    // Madrid 09:00-14:00 and Canary 12:30-15:00 (13:30-16:00 in Madrid) meet in time.
    dir.write(
        "working_hours.csv",
        "doctor,center,weekday,start,end\n\
         dr.ana.test,Centro Bueno,monday,09:00,14:00\n\
         dr.ana.test,Centro Canario,monday,12:30,15:00\n\
         dr.ana.test,Centro Atlántida,tuesday,09:00,14:00\n\
         dr.luis.test,Centro Canario,monday,12:30,15:00\n",
    );
    dir.write(
        "agenda_exceptions.csv",
        "doctor,kind,date,center,start,end,note\n\
         dr.ana.test,time_off,2027-01-07,,,,Asuntos propios\n\
         dr.luis.test,extra,2027-01-09,Centro Canario,10:00,13:00,Sábado extra\n\
         dr.nadie,time_off,2027-01-07,,,,\n\
         dr.luis.test,extra,2027-01-09,Centro Canario,10:00,13:00,otra vez\n",
    );
    let expected: &[(&str, u64, &str)] = &[
        ("centers.csv", 3, "timezone: must be an IANA time zone"),
        ("centers.csv", 5, "language: must be `es` or `en`"),
        ("users.csv", 3, "role: must be admin or secretary"),
        ("users.csv", 4, "password: must be at least 10 characters"),
        ("doctors.csv", 3, "username: is required"),
        ("doctors.csv", 4, "specialty: is required"),
        ("patients.csv", 3, "phone: must be an E.164 phone number"),
        ("patients.csv", 5, "email: must be a valid email address"),
        (
            "patients.csv",
            6,
            "name: must not contain control characters",
        ),
        ("patients.csv", 8, "status: must be ACTIVE or INACTIVE"),
        ("patients.csv", 9, "has 6 field(s), the header has 5"),
        ("patients.csv", 10, "email: the same as line 2 of this file"),
        ("services.csv", 4, "name: the same as line 2 of this file"),
        (
            "doctor_services.csv",
            3,
            "doctor: no doctor has the username \"dr.nadie\"",
        ),
        (
            "doctor_services.csv",
            5,
            "service: no service is called \"Ortodoncia\"",
        ),
        ("doctor_services.csv", 6, "the same as line 2 of this file"),
        ("working_hours.csv", 3, ""), // 409 hours_overlap, checked below
        (
            "working_hours.csv",
            4,
            "center: no center is called \"Centro Atlántida\"",
        ),
        (
            "agenda_exceptions.csv",
            4,
            "doctor: no doctor has the username \"dr.nadie\"",
        ),
        (
            "agenda_exceptions.csv",
            5,
            "doctor, kind, date, center, start, end: the same as line 3 of this file",
        ),
    ];

    let (code, report, stderr) = import(&app, dir.path(), &["--no-book"]);
    assert_eq!(
        code,
        Some(1),
        "rows failed, so the exit code says so: {report:#}\n{stderr}"
    );
    let failures: Vec<(String, u64, String)> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(failures.len(), expected.len(), "{failures:#?}");
    let overlap = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "working_hours.csv" && f["line"] == 3)
        .unwrap();
    assert_eq!(overlap["code"], "hours_overlap", "{overlap}");
    let codes = |file: &str| -> Vec<&str> {
        report["failures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["file"] == file && f["code"] != "invalid_row")
            .map(|f| f["code"].as_str().unwrap())
            .collect()
    };
    assert_eq!(
        codes("doctor_services.csv"),
        ["unknown_reference", "unknown_reference"]
    );
    for ((file, line, reason), (want_file, want_line, want_reason)) in failures.iter().zip(expected)
    {
        assert_eq!(
            (file.as_str(), *line),
            (*want_file, *want_line),
            "{failures:#?}"
        );
        assert!(
            reason.starts_with(want_reason),
            "{file}:{line}: {reason:?} should start with {want_reason:?}"
        );
    }
    for (file, created) in [
        ("centers.csv", 2),
        ("users.csv", 1),
        ("doctors.csv", 2),
        ("patients.csv", 3),
        ("services.csv", 2),
        ("doctor_services.csv", 2),
        ("working_hours.csv", 2),
        ("agenda_exceptions.csv", 2),
    ] {
        assert_eq!(
            file_report(&report, file)["created"],
            created,
            "{file}: {report:#}"
        );
    }
    let agenda_counts = || async {
        let mut counts = Vec::new();
        for table in [
            "services",
            "doctor_services",
            "working_hours",
            "agenda_exceptions",
        ] {
            counts.push(count(&app, &format!("SELECT count(*) FROM {table}")).await);
        }
        counts
    };
    assert_eq!(agenda_counts().await, [2, 2, 2, 2]);
    assert_eq!(count(&app, "SELECT count(*) FROM centers").await, 2);
    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE role = 'secretary'").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM doctors").await, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 3);
    assert_eq!(
        count(&app, "SELECT count(*) FROM patients WHERE email = 'tres@example.net' AND phone = '+34600000003' AND status = 'INACTIVE' AND language = 'en'").await,
        1,
        "a spaced phone goes in as the API normalises it"
    );

    // The text report of a second run names the same rows; the good ones are now present.
    let output = cli_env(
        &app,
        &[
            "import",
            "--dir",
            dir.path(),
            "--token",
            &app.admin_token,
            "--no-book",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("{} row(s) failed:", expected.len())),
        "{text}"
    );
    for (file, line, reason) in expected {
        assert!(
            text.contains(&format!("  {file}:{line}: {reason}")),
            "{file}:{line} missing from:\n{text}"
        );
    }
    let patients_line: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("patients.csv"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        patients_line,
        ["patients.csv", "9", "0", "3", "6"],
        "rows, created, already present, failed:\n{text}"
    );
    for (file, line) in [
        (
            "doctor_services.csv",
            ["doctor_services.csv", "5", "0", "2", "3"],
        ),
        (
            "working_hours.csv",
            ["working_hours.csv", "4", "0", "2", "2"],
        ),
        (
            "agenda_exceptions.csv",
            ["agenda_exceptions.csv", "4", "0", "2", "2"],
        ),
    ] {
        let shown: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with(file))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            shown, line,
            "the same hours and exceptions are already present:\n{text}"
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 3);
    assert_eq!(
        agenda_counts().await,
        [2, 2, 2, 2],
        "the second import added agenda rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_credentials_fail_clearly_and_passwords_are_never_shown() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let missing = cli_env(
        &app,
        &[
            "import",
            "--dir",
            "/nonexistent/citaflow",
            "--token",
            &app.admin_token,
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("data folder /nonexistent/citaflow not found"),
        "{missing:?}"
    );

    let dir = TempDir::new();
    dir.write(
        "centers.csv",
        "name,address,timezone,language\nCentro,Calle 1,Europe/Madrid,es\n",
    );
    dir.write(
        "users.csv",
        "username,role,pasword\nana.staff,admin,0123456789abc\n",
    );
    dir.write("doctors.csv", "username,name,specialty\n");
    dir.write("patients.csv", "email,name\n");
    dir.write_no_agenda();
    let bad_header = cli_env(
        &app,
        &["import", "--dir", dir.path(), "--token", &app.admin_token],
        &[],
    );
    assert_eq!(bad_header.status.code(), Some(2), "{bad_header:?}");
    assert!(
        stderr(&bad_header).contains("users.csv: unknown column \"pasword\""),
        "{bad_header:?}"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM centers").await,
        0,
        "nothing is sent when a file is unusable"
    );
    dir.write("users.csv", "username,role\n");
    std::fs::remove_file(dir.0.join("doctors.csv")).unwrap();
    let no_file = cli_env(
        &app,
        &["import", "--dir", dir.path(), "--token", &app.admin_token],
        &[],
    );
    assert!(stderr(&no_file).contains("doctors.csv"), "{no_file:?}");
    // The agenda files are read before anything is sent too.
    dir.write("doctors.csv", "username,name,specialty\n");
    std::fs::remove_file(dir.0.join("working_hours.csv")).unwrap();
    let no_hours = cli_env(
        &app,
        &["import", "--dir", dir.path(), "--token", &app.admin_token],
        &[],
    );
    assert_eq!(no_hours.status.code(), Some(2), "{no_hours:?}");
    assert!(
        stderr(&no_hours).contains("cannot open")
            && stderr(&no_hours).contains("working_hours.csv"),
        "{no_hours:?}"
    );
    dir.write_no_agenda();
    dir.write(
        "agenda_exceptions.csv",
        "doctor,kind,date,centre\ndr.ana,time_off,2027-01-07,\n",
    );
    let bad_agenda = cli_env(
        &app,
        &["import", "--dir", dir.path(), "--token", &app.admin_token],
        &[],
    );
    assert_eq!(bad_agenda.status.code(), Some(2), "{bad_agenda:?}");
    assert!(
        stderr(&bad_agenda).contains("agenda_exceptions.csv: unknown column \"centre\""),
        "{bad_agenda:?}"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM centers").await,
        0,
        "nothing is sent when an agenda file is unusable"
    );

    let data = shipped_data();
    let unreachable = cli_env(
        &app,
        &[
            "import",
            "--dir",
            data.to_str().unwrap(),
            "--api-url",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ],
        &[],
    );
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(
        stderr(&unreachable).contains("cannot reach the API at http://127.0.0.1:9/"),
        "{unreachable:?}"
    );

    let no_credentials = cli_env(&app, &["load", "--duration", "1s"], &[]);
    assert_eq!(no_credentials.status.code(), Some(2));
    assert!(
        stderr(&no_credentials).contains("no credentials"),
        "{no_credentials:?}"
    );

    let secret = "not-the-admin-password-1234";
    let wrong = cli_env(
        &app,
        &["import", "--dir", data.to_str().unwrap(), "--no-book"],
        &[
            ("CITAFLOW_USERNAME", ADMIN_USERNAME),
            ("CITAFLOW_PASSWORD", secret),
        ],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("login failed"), "{wrong:?}");
    assert!(
        !format!("{wrong:?}").contains(secret),
        "the password was echoed"
    );

    // Logging in with the password in a named variable, and a user row with a password: neither
    // is ever printed.
    let good = TempDir::new();
    let staff_password = "s3cret-staff-password";
    good.write(
        "centers.csv",
        "name,address,timezone\nCentro Login,Calle 1,Europe/Madrid\n",
    );
    good.write(
        "users.csv",
        &format!("username,role,password\nana.staff,secretary,{staff_password}\n"),
    );
    good.write("doctors.csv", "username,name,specialty\n");
    good.write("patients.csv", "email,name\n");
    good.write_no_agenda();
    let ok = cli_env(
        &app,
        &[
            "import",
            "--dir",
            good.path(),
            "--username",
            ADMIN_USERNAME,
            "--password-env",
            "ADMIN_SECRET",
            "--no-book",
        ],
        &[("ADMIN_SECRET", ADMIN_PASSWORD)],
    );
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let shown = format!("{ok:?}");
    assert!(
        !shown.contains(ADMIN_PASSWORD) && !shown.contains(staff_password),
        "a password was printed: {shown}"
    );
    let staff_token = app.login("ana.staff", staff_password).await;
    assert!(!staff_token.is_empty());

    // A secretary may not import (users and doctors need an admin): refused before sending.
    let as_secretary = cli_env(
        &app,
        &["import", "--dir", good.path(), "--token", &staff_token],
        &[],
    );
    assert_eq!(as_secretary.status.code(), Some(2));
    assert!(
        stderr(&as_secretary).contains("needs an admin"),
        "{as_secretary:?}"
    );

    // A reader that goes away early (`citaflow import | head -1`) is no reason to panic.
    let mut closed = Command::new(process::binary("citaflow"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CITAFLOW")) {
        closed.env_remove(key);
    }
    let mut child = closed
        .env("CITAFLOW_API_URL", &app.api_url)
        .args([
            "import",
            "--dir",
            good.path(),
            "--token",
            &app.admin_token,
            "--no-book",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    assert_eq!(closed.status.code(), Some(0), "{closed:?}");
    assert!(closed.stderr.is_empty(), "{closed:?}");

    for command in [
        &["--help"][..],
        &["import", "--help"],
        &["load", "--help"],
        &["dlq", "--help"],
        &["dlq", "list", "--help"],
        &["dlq", "replay", "--help"],
    ] {
        let help = cli_env(&app, command, &[]);
        assert!(help.status.success(), "{help:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("Example"),
            "{command:?} has no examples:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_run_writes_json_that_agrees_with_the_database() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let dir = TempDir::new();
    let out = Path::new(dir.path()).join("result.json");
    let output = cli_env(
        &app,
        &[
            "load",
            "--token",
            &app.admin_token,
            "--rate",
            "50",
            "--duration",
            "3s",
            "--doctors",
            "6",
            "--hot-doctors",
            "2",
            "--patients",
            "8",
            "--centers",
            "2",
            "--sample-percent",
            "50",
            "--seed",
            "42",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("P99.9") && table.contains("202 → final state"),
        "{table}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("valid JSON");
    let summary = &report["summary"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));

    assert_eq!(n(&summary["scheduled"]), 150);
    assert_eq!(n(&summary["sent"]) + n(&summary["dropped"]), 150);
    assert!(n(&summary["sent"]) >= 100, "{summary}");
    assert_eq!(n(&summary["errors"]), 0, "{report:#}");
    assert_eq!(n(&summary["answered"]), n(&summary["sent"]));
    let rate = summary["achieved_rate"].as_f64().unwrap();
    assert!(rate > 30.0 && rate < 55.0, "{summary}");

    // Status counts add up to the answers, and every operation's latency is ordered.
    let statuses = report["status"].as_object().unwrap();
    let total: u64 = statuses
        .values()
        .flat_map(|s| s.as_object().unwrap().values())
        .map(n)
        .sum();
    assert_eq!(total, n(&summary["answered"]));
    assert!(n(&statuses["create"]["202"]) > 0, "{report:#}");
    for (op, l) in report["latency_ms"].as_object().unwrap() {
        let q = |k: &str| l[k].as_f64().unwrap();
        assert!(
            q("p50") > 0.0
                && q("p50") <= q("p90")
                && q("p90") <= q("p99")
                && q("p99") <= q("p999")
                && q("p999") <= q("max"),
            "{op}: {l}"
        );
    }
    assert_eq!(
        n(&report["latency_ms"]["all"]["count"]),
        n(&summary["answered"])
    );

    // Every create or reschedule answered 202 is one booking in the database, and the directory
    // is the one asked for.
    let accepted = n(&summary["accepted_bookings"]);
    let by_status = |op: &str| {
        statuses
            .get(op)
            .and_then(|s| s["202"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(accepted, by_status("create") + by_status("reschedule"));
    app.wait_until_none_pending(Duration::from_secs(30)).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM appointments").await as u64,
        accepted
    );
    assert_eq!(count(&app, "SELECT count(*) FROM doctors").await, 6);
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 8);
    assert_eq!(count(&app, "SELECT count(*) FROM centers").await, 2);

    // The sampled creates were followed to a final state.
    let to_final = &report["to_final"];
    assert!(n(&to_final["followed"]) > 10, "{to_final}");
    let outcomes: u64 = to_final["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(n)
        .sum();
    assert_eq!(outcomes, n(&to_final["followed"]));
    assert!(n(&to_final["outcomes"]["confirmed"]) > 0, "{to_final}");
    assert_eq!(
        n(&to_final["client_ms"]["count"]),
        n(&to_final["followed"]),
        "none timed out: {to_final}"
    );
    assert!(
        to_final["server_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{to_final}"
    );
}
