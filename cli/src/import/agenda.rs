//! The agenda files' side of the import: looking up the directory records their rows name
//! (doctor usernames, center and service names) to ids through the API, and keeping a second
//! import from adding anything twice where the API has no natural key to refuse it:
//!
//! - offers (`doctor_services.csv`) are set per service with `PUT /services/{id}/doctors`,
//!   the service's current doctors plus the file's, so an import only adds offers and a doctor
//!   who already offers the service is "already present";
//! - a working-hours range the API refuses with 409 `hours_overlap` is "already present" when
//!   the very same range is there, and a failure otherwise;
//! - exceptions are compared with the doctor's exceptions on those dates before sending, and
//!   one that is already there is not sent again.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    files::{Kind, Row},
    send::{Outcome, send_retrying},
};
use crate::api::{Api, encode_query};

/// Code of a row naming a doctor, center or service the API does not have.
const UNKNOWN: &str = "unknown_reference";
/// Code of a row whose lookup in the API failed (the API's answer is the reason).
pub const LOOKUP_FAILED: &str = "lookup_failed";

/// A service as the offers need it.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    pub id: String,
    pub doctor_ids: Vec<String>,
}

/// The directory's ids by the keys the files use, as the API compares them (case-insensitive).
#[derive(Debug, Default)]
pub struct Directory {
    doctors: HashMap<String, String>,
    centers: HashMap<String, String>,
    services: HashMap<String, ServiceRef>,
    /// Why the services could not be read, if they could not (the other files do not need
    /// them).
    services_error: Option<String>,
}

impl Directory {
    /// Reads every doctor, center and service from the API. The doctor records carry no
    /// username and `GET /doctors` has no username filter, so doctors are matched to their
    /// users (`GET /users?role=doctor`) by `user_id`.
    pub async fn load(api: &Api) -> anyhow::Result<Directory> {
        let all = usize::MAX;
        let users = api.list_all("users?role=doctor", all).await?;
        let doctors = api.list_all("doctors", all).await?;
        let centers = api.list_all("centers", all).await?;
        let (services, services_error) = match api.list_all("services", all).await {
            Ok(services) => (services, None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
        let mut directory = Directory::from_lists(&users, &doctors, &centers, &services);
        directory.services_error = services_error;
        Ok(directory)
    }

    /// The lookup tables from the API's lists.
    pub fn from_lists(
        users: &[Value],
        doctors: &[Value],
        centers: &[Value],
        services: &[Value],
    ) -> Directory {
        let text = |v: &Value, field: &str| v[field].as_str().map(str::to_owned);
        let usernames: HashMap<String, String> = users
            .iter()
            .filter_map(|u| Some((text(u, "id")?, text(u, "username")?.to_lowercase())))
            .collect();
        Directory {
            doctors: doctors
                .iter()
                .filter_map(|d| {
                    let username = usernames.get(d["user_id"].as_str()?)?;
                    Some((username.clone(), text(d, "id")?))
                })
                .collect(),
            centers: centers
                .iter()
                .filter_map(|c| Some((key(c["name"].as_str()?), text(c, "id")?)))
                .collect(),
            services: services
                .iter()
                .filter_map(|s| {
                    let doctor_ids = s["doctor_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|id| id.as_str().map(str::to_owned))
                        .collect();
                    Some((
                        key(s["name"].as_str()?),
                        ServiceRef {
                            id: text(s, "id")?,
                            doctor_ids,
                        },
                    ))
                })
                .collect(),
            services_error: None,
        }
    }

    fn doctor(&self, row: &Row) -> Result<String, Outcome> {
        let username = row.get("doctor").unwrap_or_default();
        self.doctors
            .get(&key(username))
            .cloned()
            .ok_or_else(|| unknown(format!("doctor: no doctor has the username {username:?}")))
    }

    fn center(&self, name: &str) -> Result<String, Outcome> {
        self.centers
            .get(&key(name))
            .cloned()
            .ok_or_else(|| unknown(format!("center: no center is called {name:?}")))
    }

    fn service(&self, row: &Row) -> Result<&ServiceRef, Outcome> {
        let name = row.get("service").unwrap_or_default();
        if let Some(error) = &self.services_error {
            return Err(Outcome::Failed {
                code: LOOKUP_FAILED.into(),
                reason: format!("service: the services could not be read: {error}"),
            });
        }
        self.services
            .get(&key(name))
            .ok_or_else(|| unknown(format!("service: no service is called {name:?}")))
    }
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn unknown(reason: String) -> Outcome {
    Outcome::Failed {
        code: UNKNOWN.into(),
        reason,
    }
}

/// A row of `working_hours.csv` or `agenda_exceptions.csv` made ready: the item to send, or
/// already an outcome (a reference not found).
#[derive(Debug, Clone)]
pub enum Prepared {
    Send(Value),
    Done(Outcome),
}

/// The item for a row of `working_hours.csv` or `agenda_exceptions.csv`, with the references
/// looked up. Required cells are always sent (empty when missing, so the API names them);
/// empty optional cells are left out.
pub fn prepare(kind: Kind, row: &Row, directory: &Directory) -> Prepared {
    let build = || -> Result<Value, Outcome> {
        let mut item = Map::new();
        item.insert("doctor_id".into(), directory.doctor(row)?.into());
        for column in kind.columns() {
            let value = row.get(column.name);
            let (field, value) = match (column.name, value) {
                ("doctor", _) => continue,
                ("center", Some(name)) => ("center_id", directory.center(name)?),
                ("weekday" | "kind", Some(v)) => (column.name, v.to_lowercase()),
                (name, Some(v)) => (name, v.to_owned()),
                ("center", None) if column.required => ("center_id", String::new()),
                (name, None) if column.required => (name, String::new()),
                (_, None) => continue,
            };
            item.insert(field.into(), Value::String(value));
        }
        Ok(Value::Object(item))
    };
    match build() {
        Ok(item) => Prepared::Send(item),
        Err(outcome) => Prepared::Done(outcome),
    }
}

/// What makes a working-hours range the same range: these fields of the item sent or of the
/// API's record (which has the same names).
const HOURS_FIELDS: [&str; 7] = [
    "doctor_id",
    "center_id",
    "weekday",
    "start",
    "end",
    "valid_from",
    "valid_until",
];
/// What makes an exception the same exception (the note is a comment, not compared).
const EXCEPTION_FIELDS: [&str; 6] = ["doctor_id", "kind", "date", "center_id", "start", "end"];

/// The identity of an item or record over `fields`, normalised as the API stores values:
/// dates as `YYYY-MM-DD`, times as `HH:MM`, names in lower case, absent and null alike.
fn identity(value: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .map(|f| normalise(value[*f].as_str().unwrap_or_default()))
        .collect()
}

fn normalise(value: &str) -> String {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return date.to_string();
    }
    if let Some((h, m)) = value.split_once(':')
        && let (Ok(h), Ok(m)) = (h.parse::<u16>(), m.parse::<u16>())
        && m < 60
        && value.len() <= 5
    {
        return format!("{h:02}:{m:02}");
    }
    value.to_lowercase()
}

/// After sending working hours: a row refused with `hours_overlap` is "already present" when
/// the very same range is among the doctor's hours (a second import), and stays a failure
/// otherwise (it meets a different range). If the doctor's hours cannot be read, the row
/// stays failed with the API's overlap message.
pub async fn reconcile_hours(api: &Api, items: &[Option<Value>], outcomes: &mut [Outcome]) {
    let overlapping =
        |o: &Outcome| matches!(o, Outcome::Failed { code, .. } if code == "hours_overlap");
    let doctors: HashSet<&str> = items
        .iter()
        .zip(outcomes.iter())
        .filter(|(_, o)| overlapping(o))
        .filter_map(|(item, _)| item.as_ref()?["doctor_id"].as_str())
        .collect();
    let mut existing = HashSet::new();
    for doctor in doctors {
        if let Ok(records) = api
            .list_every(&format!("working-hours?doctor_id={doctor}"))
            .await
        {
            existing.extend(records.iter().map(|r| identity(r, &HOURS_FIELDS)));
        }
    }
    for (item, outcome) in items.iter().zip(outcomes.iter_mut()) {
        if overlapping(outcome)
            && let Some(item) = item
            && existing.contains(&identity(item, &HOURS_FIELDS))
        {
            *outcome = Outcome::Present;
        }
    }
}

/// Longest span of dates asked for in one `GET /agenda-exceptions`.
const EXCEPTION_WINDOW_DAYS: i64 = 28;

/// Before sending exceptions: each item that is already among its doctor's exceptions (a
/// second import) gets its outcome ("already present"); the others stay to be sent. When a
/// doctor's exceptions cannot be read, that doctor's rows fail (sending them could duplicate
/// them).
pub async fn precheck_exceptions(api: &Api, prepared: &mut [Prepared]) {
    // Each doctor's dates, in windows the list endpoint answers in one go.
    let mut dates: BTreeMap<String, Vec<NaiveDate>> = BTreeMap::new();
    for p in prepared.iter() {
        if let Prepared::Send(item) = p
            && let (Some(doctor), Ok(date)) = (
                item["doctor_id"].as_str(),
                NaiveDate::parse_from_str(
                    item["date"].as_str().unwrap_or_default().trim(),
                    "%Y-%m-%d",
                ),
            )
        {
            dates.entry(doctor.to_owned()).or_default().push(date);
        }
    }
    let mut existing = HashSet::new();
    let mut unreadable: HashMap<String, String> = HashMap::new();
    for (doctor, dates) in dates {
        for (from, to) in windows(dates, EXCEPTION_WINDOW_DAYS) {
            let path = format!("agenda-exceptions?doctor_id={doctor}&from={from}&to={to}");
            match api.list_every(&path).await {
                Ok(records) => {
                    existing.extend(records.iter().map(|r| identity(r, &EXCEPTION_FIELDS)))
                }
                Err(e) => {
                    unreadable.insert(doctor.clone(), format!("{e:#}"));
                }
            }
        }
    }
    for p in prepared.iter_mut() {
        let Prepared::Send(item) = p else { continue };
        if existing.contains(&identity(item, &EXCEPTION_FIELDS)) {
            *p = Prepared::Done(Outcome::Present);
        } else if let Some(reason) = item["doctor_id"].as_str().and_then(|d| unreadable.get(d)) {
            *p = Prepared::Done(Outcome::Failed {
                code: LOOKUP_FAILED.into(),
                reason: format!("the doctor's exceptions could not be read to compare: {reason}"),
            });
        }
    }
}

/// Sorted, distinct dates grouped into `(from, to)` windows of at most `days` days.
fn windows(mut dates: Vec<NaiveDate>, days: i64) -> Vec<(NaiveDate, NaiveDate)> {
    dates.sort_unstable();
    dates.dedup();
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for date in dates {
        match out.last_mut() {
            Some((from, to)) if (date - *from).num_days() < days => *to = date,
            _ => out.push((date, date)),
        }
    }
    out
}

/// One `PUT /services/{id}/doctors`: the service's doctors after the import, and which rows
/// add a doctor.
#[derive(Debug, PartialEq)]
pub struct OfferPlan {
    pub service_id: String,
    pub doctor_ids: Vec<String>,
    /// Rows (by index) whose doctor did not offer the service yet.
    pub adds: Vec<usize>,
}

/// Groups `doctor_services.csv` by service: each row's outcome when it is known without
/// sending (a reference not found, or the doctor already offers the service), and the PUTs
/// to send for the rest. Offers are only added: a service's current doctors stay.
pub fn plan_offers(rows: &[Row], directory: &Directory) -> (Vec<Option<Outcome>>, Vec<OfferPlan>) {
    let mut outcomes = vec![None; rows.len()];
    let mut plans: Vec<OfferPlan> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let (doctor, service) = match (directory.doctor(row), directory.service(row)) {
            (Ok(d), Ok(s)) => (d, s),
            (Err(e), _) | (_, Err(e)) => {
                outcomes[index] = Some(e);
                continue;
            }
        };
        if service.doctor_ids.contains(&doctor) {
            outcomes[index] = Some(Outcome::Present);
            continue;
        }
        let plan = match plans.iter().position(|p| p.service_id == service.id) {
            Some(i) => &mut plans[i],
            None => {
                plans.push(OfferPlan {
                    service_id: service.id.clone(),
                    doctor_ids: service.doctor_ids.clone(),
                    adds: Vec::new(),
                });
                plans.last_mut().expect("just pushed")
            }
        };
        // Rows are unique by (doctor, service), so each doctor is added once.
        plan.doctor_ids.push(doctor);
        plan.adds.push(index);
    }
    (outcomes, plans)
}

/// Sets the offers of `doctor_services.csv` and answers an outcome per row, in order. `Err`
/// only when going on is pointless (API unreachable, credentials refused).
pub async fn send_offers(
    api: &Api,
    rows: &[Row],
    directory: &Directory,
    concurrency: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let (mut outcomes, plans) = plan_offers(rows, directory);
    let mut results = stream::iter(plans.into_iter().map(|plan| async move {
        let path = format!("services/{}/doctors", encode_query(&plan.service_id));
        let body = json!({ "doctor_ids": plan.doctor_ids });
        let reply = send_retrying(api, Method::PUT, &path, &body).await;
        (plan.adds, reply)
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some((adds, reply)) = results.next().await {
        let reply = reply?;
        let outcome = if reply.status == StatusCode::OK {
            Outcome::Created
        } else {
            Outcome::Failed {
                code: reply.code().unwrap_or("http_error").into(),
                reason: reply.reason(),
            }
        };
        for index in adds {
            outcomes[index] = Some(outcome.clone());
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Failed {
                code: "no_result".into(),
                reason: "no answer for this row".into(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, cells: &[(&'static str, &str)]) -> Row {
        Row {
            line,
            cells: cells.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    fn directory() -> Directory {
        Directory::from_lists(
            &[
                json!({"id": "u1", "username": "dr.ana", "role": "doctor"}),
                json!({"id": "u2", "username": "Dr.Luis", "role": "doctor"}),
            ],
            &[
                json!({"id": "d1", "user_id": "u1", "name": "Dra. Ana"}),
                json!({"id": "d2", "user_id": "u2", "name": "Dr. Luis"}),
                json!({"id": "d3", "user_id": null, "name": "Sin usuario"}),
            ],
            &[json!({"id": "c1", "name": "OdontoCare Madrid Chamberí"})],
            &[
                json!({"id": "s1", "name": "Revisión", "doctor_ids": ["d2"]}),
                json!({"id": "s2", "name": "Endodoncia", "doctor_ids": []}),
            ],
        )
    }

    #[test]
    fn offers_are_grouped_by_service_and_only_added() {
        let rows = [
            row(2, &[("doctor", "dr.ana"), ("service", "revisión")]),
            row(3, &[("doctor", "DR.LUIS"), ("service", "Revisión")]),
            row(4, &[("doctor", "dr.ana"), ("service", "Endodoncia")]),
            row(5, &[("doctor", "dr.nadie"), ("service", "Revisión")]),
            row(6, &[("doctor", "dr.luis"), ("service", "Endodoncia")]),
            row(7, &[("doctor", "dr.ana"), ("service", "Ortodoncia")]),
        ];
        let (outcomes, plans) = plan_offers(&rows, &directory());
        assert_eq!(
            plans,
            [
                OfferPlan {
                    service_id: "s1".into(),
                    doctor_ids: vec!["d2".into(), "d1".into()],
                    adds: vec![0],
                },
                OfferPlan {
                    service_id: "s2".into(),
                    doctor_ids: vec!["d1".into(), "d2".into()],
                    adds: vec![2, 4],
                },
            ],
            "a service's current doctors stay, the file's are added"
        );
        assert!(outcomes[0].is_none() && outcomes[2].is_none() && outcomes[4].is_none());
        assert!(matches!(outcomes[1], Some(Outcome::Present)));
        let reason = |o: &Option<Outcome>| match o {
            Some(Outcome::Failed { code, reason }) => format!("{reason} [{code}]"),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(&outcomes[3]),
            "doctor: no doctor has the username \"dr.nadie\" [unknown_reference]"
        );
        assert_eq!(
            reason(&outcomes[5]),
            "service: no service is called \"Ortodoncia\" [unknown_reference]"
        );
    }

    #[test]
    fn agenda_rows_name_ids_and_keep_the_api_in_charge_of_values() {
        let dir = directory();
        let hours = row(
            2,
            &[
                ("doctor", "Dr.Ana"),
                ("center", "odontocare madrid chamberí"),
                ("weekday", "Monday"),
                ("start", "09:00"),
                ("valid_from", "2027-01-09"),
            ],
        );
        let Prepared::Send(item) = prepare(Kind::WorkingHours, &hours, &dir) else {
            panic!("not sent")
        };
        assert_eq!(
            item,
            json!({"doctor_id": "d1", "center_id": "c1", "weekday": "monday", "start": "09:00",
                   "end": "", "valid_from": "2027-01-09"}),
            "a missing required cell is sent empty for the API to name"
        );
        let day_off = row(
            3,
            &[
                ("doctor", "dr.luis"),
                ("kind", "TIME_OFF"),
                ("date", "2027-02-02"),
                ("note", "Festivo"),
            ],
        );
        let Prepared::Send(item) = prepare(Kind::AgendaExceptions, &day_off, &dir) else {
            panic!("not sent")
        };
        assert_eq!(
            item,
            json!({"doctor_id": "d2", "kind": "time_off", "date": "2027-02-02", "note": "Festivo"}),
            "no center: at every center"
        );
        let elsewhere = row(
            4,
            &[
                ("doctor", "dr.luis"),
                ("kind", "extra"),
                ("date", "2027-02-02"),
                ("center", "Atlántida"),
            ],
        );
        assert!(matches!(
            prepare(Kind::AgendaExceptions, &elsewhere, &dir),
            Prepared::Done(Outcome::Failed { ref code, ref reason })
                if code == UNKNOWN && reason == "center: no center is called \"Atlántida\""
        ));
    }

    #[test]
    fn identities_compare_as_the_api_stores_values() {
        let sent = json!({"doctor_id": "d1", "center_id": "c1", "weekday": "monday",
                          "start": "9:00", "end": "14:00", "valid_from": "2027-1-9"});
        let stored = json!({"id": "h1", "doctor_id": "d1", "center_id": "c1", "weekday": "monday",
                            "start": "09:00", "end": "14:00", "valid_from": "2027-01-09",
                            "valid_until": null, "created_at": "2026-12-01T10:00:00Z"});
        assert_eq!(
            identity(&sent, &HOURS_FIELDS),
            identity(&stored, &HOURS_FIELDS)
        );
        let later = json!({"doctor_id": "d1", "center_id": "c1", "weekday": "monday",
                           "start": "09:00", "end": "13:00", "valid_from": "2027-01-09"});
        assert_ne!(
            identity(&later, &HOURS_FIELDS),
            identity(&stored, &HOURS_FIELDS)
        );
        let note =
            json!({"doctor_id": "d1", "kind": "time_off", "date": "2027-02-02", "note": "otra"});
        let stored = json!({"doctor_id": "d1", "kind": "time_off", "date": "2027-02-02",
                            "center_id": null, "start": null, "end": null, "note": "Festivo"});
        assert_eq!(
            identity(&note, &EXCEPTION_FIELDS),
            identity(&stored, &EXCEPTION_FIELDS),
            "the note is not compared"
        );
    }

    #[test]
    fn exception_dates_are_read_in_short_windows() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            windows(
                vec![
                    d("2027-04-21"),
                    d("2027-04-19"),
                    d("2027-01-07"),
                    d("2027-04-19"),
                    d("2027-05-16")
                ],
                28
            ),
            [
                (d("2027-01-07"), d("2027-01-07")),
                (d("2027-04-19"), d("2027-05-16")),
            ]
        );
        assert_eq!(
            windows(vec![d("2027-04-19"), d("2027-05-17")], 28),
            [
                (d("2027-04-19"), d("2027-04-19")),
                (d("2027-05-17"), d("2027-05-17"))
            ]
        );
    }
}
