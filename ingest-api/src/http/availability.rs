//! `GET /availability`: the free slots of a service, per doctor and center, over a range of
//! local dates.
//!
//! A slot is free when it lies in the doctor's open time at the center (weekly hours and extra
//! openings, minus time off: `citaflow_agenda`, the same functions the processor decides
//! with), its occupied time (the visit widened by the service's buffers) meets no confirmed
//! appointment's occupied time, and it starts no sooner than the minimum notice
//! (`api.availability_notice_minutes`) and within the booking horizon. Pending requests do not
//! hide a slot: they are decided within milliseconds, and a race for one slot is settled by
//! the processor (one confirmed, the other `slot_taken`).
//!
//! The search costs a fixed number of queries whatever the range and the number of doctors:
//! the service, the candidate doctors, their centers, their agendas (two, in
//! `citaflow_agenda::load`) and their busy time; the slots are computed in memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::{Json, extract::State};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use citaflow_agenda::{self as agenda, Agenda, Interval, SlotSpec};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::AuthUser,
    error::{ApiError, AppQuery, ErrorBody},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(availability))
}

/// Most local dates one search may cover (`from`..=`to`).
pub const MAX_DAYS: i64 = 31;
/// Dates searched when `to` is not given: `from` and the six after it (a week).
const DEFAULT_DAYS: u64 = 7;

/// Query of `GET /availability`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    /// The service (kind of visit) to find room for. Required: without it the answer is 422.
    #[param(required = true)]
    pub service_id: Option<Uuid>,
    /// Only this doctor's slots.
    pub doctor_id: Option<Uuid>,
    /// Only this center's slots.
    pub center_id: Option<Uuid>,
    /// First local date (`YYYY-MM-DD`, the centers' own dates); default: today (the earliest
    /// today among the centers searched).
    pub from: Option<NaiveDate>,
    /// Last local date, inclusive; default: `from` + 6 days. At most 31 dates from `from`,
    /// and not before it.
    pub to: Option<NaiveDate>,
}

/// The service searched for.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityService {
    pub id: Uuid,
    pub name: String,
    pub duration_minutes: i64,
}

/// A doctor whose agenda was searched.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct AvailabilityDoctor {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
}

/// A center where the doctors searched work.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AvailabilityCenter {
    pub id: Uuid,
    pub name: String,
    /// IANA time zone: slot times carry its UTC offset.
    pub timezone: String,
}

/// One free visit: book it with `POST /bookings` (`start`, the doctor, the center, the
/// service).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FreeSlot {
    /// RFC 3339 with the center's UTC offset on that date.
    pub start: DateTime<FixedOffset>,
    /// `start` + the service's duration.
    pub end: DateTime<FixedOffset>,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
}

/// The free slots of one local date (a slot's date is its local date at its center).
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityDay {
    pub date: NaiveDate,
    /// Sorted by start, then doctor.
    pub slots: Vec<FreeSlot>,
}

/// Answer of `GET /availability`: every date of the range (empty ones too), with the doctors
/// and centers the slots refer to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Availability {
    pub service: AvailabilityService,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<AvailabilityDay>,
    /// The doctors searched (active, offering the service, working at one of `centers`).
    pub doctors: Vec<AvailabilityDoctor>,
    /// The centers searched (active, where one of `doctors` works).
    pub centers: Vec<AvailabilityCenter>,
}

#[derive(Debug, FromRow)]
struct ServiceRow {
    id: Uuid,
    name: String,
    duration_minutes: i32,
    buffer_before_minutes: i32,
    buffer_after_minutes: i32,
    active: bool,
}

#[derive(Debug, FromRow)]
struct CenterRow {
    id: Uuid,
    name: String,
    timezone: String,
}

/// A center searched, with its parsed time zone.
#[derive(Debug, Clone)]
struct Center {
    summary: AvailabilityCenter,
    tz: Tz,
}

/// Refuses a range that runs backwards or is too long (422 on `to`).
fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
    let span = to.signed_duration_since(from).num_days();
    if span < 0 {
        return Err(ApiError::validation("to", "must not be before from"));
    }
    if span >= MAX_DAYS {
        return Err(ApiError::validation(
            "to",
            format!(
                "must be at most {} days after from ({MAX_DAYS} dates)",
                MAX_DAYS - 1
            ),
        ));
    }
    Ok(())
}

/// Free slots of a service (every role). Each date of `from..=to` is listed, with its slots
/// sorted by start then doctor; times carry the center's UTC offset.
///
/// Candidates: the active doctors who offer the service (or only `doctor_id`) at the active
/// centers where they have working hours or an extra opening (or only `center_id`). A slot
/// lies on the service's grid (every `duration_minutes`, at most every 30 minutes, from the
/// start of each open stretch), its occupied time (with the service's buffers) meets no
/// confirmed appointment, and it starts at least `api.availability_notice_minutes` from now
/// and within the booking horizon. Pending requests do not hide a slot.
///
/// Beyond the schema: an unknown or inactive service is 422 on `service_id`; `to` before
/// `from`, or more than 31 dates, is 422 on `to`.
#[utoipa::path(get, path = "/availability", tag = "availability", security(("bearer" = [])),
    params(AvailabilityQuery),
    responses((status = 200, body = Availability),
        (status = 422, description = "`service_id` missing, unknown or inactive; `to` before `from` or more than 31 dates after it", body = ErrorBody)))]
async fn availability(
    State(state): State<AppState>,
    _user: AuthUser,
    AppQuery(query): AppQuery<AvailabilityQuery>,
) -> Result<Json<Availability>, ApiError> {
    let Some(service_id) = query.service_id else {
        return Err(ApiError::validation("service_id", "is required"));
    };
    if let (Some(from), Some(to)) = (query.from, query.to) {
        check_range(from, to)?;
    }
    let now = Utc::now();
    let mut conn = state.pool.acquire().await?;
    let answer = super::timed(
        "availability",
        search(&mut conn, &state, &query, service_id, now),
    );
    Ok(Json(answer.await?))
}

async fn search(
    conn: &mut PgConnection,
    state: &AppState,
    query: &AvailabilityQuery,
    service_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Availability, ApiError> {
    let service: Option<ServiceRow> = sqlx::query_as(
        "SELECT id, name, duration_minutes, buffer_before_minutes, buffer_after_minutes, active
           FROM services WHERE id = $1",
    )
    .bind(service_id)
    .fetch_optional(&mut *conn)
    .await?;
    let service = match service {
        None => return Err(ApiError::validation("service_id", "no such service")),
        Some(s) if !s.active => {
            return Err(ApiError::validation(
                "service_id",
                "the service is not active",
            ));
        }
        Some(s) => s,
    };

    let doctors: Vec<AvailabilityDoctor> = sqlx::query_as(
        "SELECT d.id, d.name, d.specialty
           FROM doctor_services ds JOIN doctors d ON d.id = ds.doctor_id
          WHERE ds.service_id = $1 AND d.active AND ($2::uuid IS NULL OR d.id = $2)
          ORDER BY d.name, d.id",
    )
    .bind(service_id)
    .bind(query.doctor_id)
    .fetch_all(&mut *conn)
    .await?;
    let doctor_ids: Vec<Uuid> = doctors.iter().map(|d| d.id).collect();

    // A doctor works at a center when they have hours there (or an extra opening).
    let centers: Vec<CenterRow> = if doctor_ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT c.id, c.name, c.timezone FROM centers c
              WHERE c.active AND ($2::uuid IS NULL OR c.id = $2)
                AND (EXISTS (SELECT 1 FROM working_hours w
                              WHERE w.center_id = c.id AND w.doctor_id = ANY($1))
                     OR EXISTS (SELECT 1 FROM agenda_exceptions e
                                 WHERE e.center_id = c.id AND e.kind = 'extra'
                                   AND e.doctor_id = ANY($1)))
              ORDER BY c.name, c.id",
        )
        .bind(&doctor_ids)
        .bind(query.center_id)
        .fetch_all(&mut *conn)
        .await?
    };
    let centers: Vec<Center> = centers
        .into_iter()
        .filter_map(|c| match c.timezone.parse::<Tz>() {
            Ok(tz) => Some(Center {
                summary: AvailabilityCenter {
                    id: c.id,
                    name: c.name,
                    timezone: c.timezone,
                },
                tz,
            }),
            Err(_) => {
                tracing::warn!(center_id = %c.id, "center with an unknown time zone left out");
                None
            }
        })
        .collect();

    // "Today" is the earliest local today among the centers, so no center's today is missed.
    let from = query.from.unwrap_or_else(|| {
        centers
            .iter()
            .map(|c| agenda::local_date(c.tz, now))
            .min()
            .unwrap_or_else(|| now.date_naive())
    });
    let to = query.to.unwrap_or_else(|| {
        from.checked_add_days(chrono::Days::new(DEFAULT_DAYS - 1))
            .unwrap_or(NaiveDate::MAX)
    });
    check_range(from, to)?;

    let spec = SlotSpec::for_service(
        i64::from(service.duration_minutes),
        i64::from(service.buffer_before_minutes),
        i64::from(service.buffer_after_minutes),
    );
    let earliest =
        now + Duration::minutes(i64::from(state.settings.api.availability_notice_minutes));
    let latest = now + Duration::days(i64::from(state.settings.api.booking_horizon_days));
    // Only dates that can hold a bookable slot are computed (a day either side of now and of
    // the horizon covers every time zone); the others are listed empty. This also keeps the
    // date arithmetic far from chrono's limits whatever dates are asked for.
    let window = (
        from.max(now.date_naive() - Duration::days(1)),
        to.min(latest.date_naive() + Duration::days(1)),
    );
    let mut found = Found::default();
    if window.0 <= window.1 && !doctor_ids.is_empty() && !centers.is_empty() {
        let (first, last) = window;
        let agendas = agenda::load(
            &mut *conn,
            &doctor_ids,
            first - Duration::days(1),
            last + Duration::days(1),
        )
        .await?;
        let pairs = pairs(&doctor_ids, &centers, &agendas, window);
        let searched: Vec<Uuid> = {
            let mut ids: Vec<Uuid> = pairs.iter().map(|(d, _)| *d).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let busy = if searched.is_empty() {
            HashMap::new()
        } else {
            busy_time(&mut *conn, &searched, &centers, window).await?
        };
        found = find_slots(
            &pairs, &centers, &agendas, &busy, spec, window, earliest, latest,
        );
    }
    Ok(assemble(service, from, to, doctors, centers, found))
}

/// The (doctor, center index) pairs to search: the doctor has hours at the center, or an extra
/// opening there within the dates.
fn pairs(
    doctor_ids: &[Uuid],
    centers: &[Center],
    agendas: &HashMap<Uuid, Agenda>,
    (first, last): (NaiveDate, NaiveDate),
) -> Vec<(Uuid, usize)> {
    let mut pairs = Vec::new();
    for doctor in doctor_ids {
        let Some(agenda) = agendas.get(doctor) else {
            continue;
        };
        for (index, center) in centers.iter().enumerate() {
            let id = center.summary.id;
            let extra = agenda.exceptions.iter().any(|e| {
                e.kind == agenda::ExceptionKind::Extra
                    && e.center_id == Some(id)
                    && e.date >= first
                    && e.date <= last
            });
            if agenda.works_at(id) || extra {
                pairs.push((*doctor, index));
            }
        }
    }
    pairs
}

/// The occupied time of the doctors' confirmed appointments around the dates, per doctor,
/// sorted by start: one query for every doctor. Appointments are selected by start (the
/// `(doctor_id, starts_at)` index) a day beyond the dates' instants on both sides, which
/// covers any visit and its buffers reaching into them.
async fn busy_time(
    conn: &mut PgConnection,
    doctor_ids: &[Uuid],
    centers: &[Center],
    (first, last): (NaiveDate, NaiveDate),
) -> Result<HashMap<Uuid, Vec<Interval>>, ApiError> {
    let starts = centers.iter().map(|c| agenda::instant(c.tz, first, 0));
    let ends = centers
        .iter()
        .map(|c| agenda::instant(c.tz, last, agenda::DAY_MINUTES));
    let lower = starts.min().expect("centers") - Duration::days(1);
    let upper = ends.max().expect("centers") + Duration::days(1);
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT doctor_id, coalesce(occupied_from, starts_at) AS busy_from,
                coalesce(occupied_until, ends_at) AS busy_until
           FROM appointments
          WHERE doctor_id = ANY($1) AND status = 'confirmed'
            AND starts_at >= $2 AND starts_at < $3
          ORDER BY busy_from",
    )
    .bind(doctor_ids)
    .bind(lower)
    .bind(upper)
    .fetch_all(conn)
    .await?;
    let mut busy: HashMap<Uuid, Vec<Interval>> = HashMap::new();
    for (doctor, from, until) in rows {
        busy.entry(doctor)
            .or_default()
            .push(Interval::new(from, until));
    }
    Ok(busy)
}

/// Slots found, by local date.
#[derive(Debug, Default)]
struct Found {
    days: BTreeMap<NaiveDate, Vec<FreeSlot>>,
    /// Which doctors and centers (by index) were searched.
    doctors: HashSet<Uuid>,
    centers: HashSet<usize>,
}

#[allow(clippy::too_many_arguments)]
fn find_slots(
    pairs: &[(Uuid, usize)],
    centers: &[Center],
    agendas: &HashMap<Uuid, Agenda>,
    busy: &HashMap<Uuid, Vec<Interval>>,
    spec: SlotSpec,
    (first, last): (NaiveDate, NaiveDate),
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
) -> Found {
    let mut found = Found::default();
    for &(doctor, index) in pairs {
        let center = &centers[index];
        found.doctors.insert(doctor);
        found.centers.insert(index);
        let Some(agenda) = agendas.get(&doctor) else {
            continue;
        };
        let open = agenda.open(center.summary.id, center.tz, first, last);
        let busy = busy.get(&doctor).map(Vec::as_slice).unwrap_or_default();
        for slot in agenda::free_slots(&open, busy, spec, earliest) {
            if slot.start > latest {
                break;
            }
            let start = slot.start.with_timezone(&center.tz);
            found
                .days
                .entry(start.date_naive())
                .or_default()
                .push(FreeSlot {
                    start: start.fixed_offset(),
                    end: slot.end.with_timezone(&center.tz).fixed_offset(),
                    doctor_id: doctor,
                    center_id: center.summary.id,
                });
        }
    }
    found
}

/// The answer: every date of `from..=to` with its slots sorted, and the doctors and centers
/// searched (in name order).
fn assemble(
    service: ServiceRow,
    from: NaiveDate,
    to: NaiveDate,
    doctors: Vec<AvailabilityDoctor>,
    centers: Vec<Center>,
    mut found: Found,
) -> Availability {
    let days = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|date| {
            let mut slots = found.days.remove(&date).unwrap_or_default();
            slots.sort_by(|a, b| {
                (a.start, a.doctor_id, a.center_id).cmp(&(b.start, b.doctor_id, b.center_id))
            });
            AvailabilityDay { date, slots }
        })
        .collect();
    Availability {
        service: AvailabilityService {
            id: service.id,
            name: service.name,
            duration_minutes: i64::from(service.duration_minutes),
        },
        from,
        to,
        days,
        doctors: doctors
            .into_iter()
            .filter(|d| found.doctors.contains(&d.id))
            .collect(),
        centers: centers
            .into_iter()
            .enumerate()
            .filter(|(i, _)| found.centers.contains(i))
            .map(|(_, c)| c.summary)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;
    use citaflow_agenda::{DayRange, WeeklyHours};

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A doctor working Monday to Friday 09:00–14:00 at a Madrid center.
    fn madrid_doctor() -> (Uuid, Vec<Center>, HashMap<Uuid, Agenda>) {
        let doctor = Uuid::new_v4();
        let center = Center {
            summary: AvailabilityCenter {
                id: Uuid::new_v4(),
                name: "Centro".into(),
                timezone: "Europe/Madrid".into(),
            },
            tz: chrono_tz::Europe::Madrid,
        };
        let hours = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ]
        .into_iter()
        .map(|weekday| WeeklyHours {
            id: Uuid::new_v4(),
            center_id: center.summary.id,
            weekday,
            range: DayRange::new(540, 840).unwrap(),
            valid_from: None,
            valid_until: None,
        })
        .collect();
        let agendas = HashMap::from([(
            doctor,
            Agenda {
                hours,
                exceptions: vec![],
            },
        )]);
        (doctor, vec![center], agendas)
    }

    fn service(minutes: i32) -> ServiceRow {
        ServiceRow {
            id: Uuid::new_v4(),
            name: "Limpieza".into(),
            duration_minutes: minutes,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            active: true,
        }
    }

    #[test]
    fn every_date_is_listed_and_slots_carry_the_centers_offset() {
        let (doctor, centers, agendas) = madrid_doctor();
        let window = (date("2027-03-26"), date("2027-03-29"));
        let pairs = pairs(&[doctor], &centers, &agendas, window);
        // A confirmed visit 10:00–10:30 local on Friday with a 10-minute buffer after.
        let busy = HashMap::from([(
            doctor,
            vec![Interval::new(
                utc("2027-03-26T09:00:00Z"),
                utc("2027-03-26T09:40:00Z"),
            )],
        )]);
        let found = find_slots(
            &pairs,
            &centers,
            &agendas,
            &busy,
            SlotSpec::for_service(30, 0, 0),
            window,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        let doctors = vec![AvailabilityDoctor {
            id: doctor,
            name: "Dra.".into(),
            specialty: "Odontología".into(),
        }];
        let answer = assemble(service(30), window.0, window.1, doctors, centers, found);
        let json = serde_json::to_value(&answer).unwrap();
        let days = json["days"].as_array().unwrap();
        assert_eq!(days.len(), 4, "every date, weekend included");
        assert_eq!(days[0]["slots"][0]["start"], "2027-03-26T09:00:00+01:00");
        assert_eq!(days[0]["slots"][0]["end"], "2027-03-26T09:30:00+01:00");
        let friday: Vec<&str> = days[0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["start"].as_str().unwrap()[11..16])
            .collect();
        assert_eq!(
            friday,
            [
                "09:00", "09:30", "11:00", "11:30", "12:00", "12:30", "13:00", "13:30"
            ],
            "10:00 and 10:30 meet the busy time"
        );
        assert!(days[1]["slots"].as_array().unwrap().is_empty());
        assert!(days[2]["slots"].as_array().unwrap().is_empty());
        assert_eq!(days[3]["date"], "2027-03-29");
        assert_eq!(days[3]["slots"][0]["start"], "2027-03-29T09:00:00+02:00");
        assert_eq!(days[3]["slots"].as_array().unwrap().len(), 10);
        assert_eq!(json["doctors"].as_array().unwrap().len(), 1);
        assert_eq!(json["centers"][0]["timezone"], "Europe/Madrid");
    }

    #[test]
    fn notice_and_horizon_bound_the_slots() {
        let (doctor, centers, agendas) = madrid_doctor();
        let window = (date("2027-03-26"), date("2027-03-29"));
        let pairs = pairs(&[doctor], &centers, &agendas, window);
        let found = find_slots(
            &pairs,
            &centers,
            &agendas,
            &HashMap::new(),
            SlotSpec::for_service(20, 0, 0),
            window,
            utc("2027-03-26T12:05:00Z"),
            utc("2027-03-29T07:20:00Z"),
        );
        let starts: Vec<String> = found
            .days
            .values()
            .flatten()
            .map(|s| s.start.to_rfc3339())
            .collect();
        assert_eq!(
            starts,
            [
                "2027-03-26T13:20:00+01:00",
                "2027-03-26T13:40:00+01:00",
                "2027-03-29T09:00:00+02:00",
                "2027-03-29T09:20:00+02:00",
            ]
        );
    }

    #[test]
    fn the_document_states_the_query_and_the_answer() {
        let (_, doc) = super::super::api();
        let doc = serde_json::to_value(doc).unwrap();
        let operation = &doc["paths"]["/availability"]["get"];
        let params = operation["parameters"].as_array().unwrap();
        let param = |name: &str| params.iter().find(|p| p["name"] == name).unwrap().clone();
        assert_eq!(param("service_id")["required"], true);
        assert_eq!(param("doctor_id")["required"], false);
        assert_eq!(param("from")["schema"]["format"], "date");
        for status in ["200", "422"] {
            assert!(operation["responses"][status].is_object(), "{status}");
        }
        let slot = &doc["components"]["schemas"]["FreeSlot"]["properties"];
        assert_eq!(slot["start"]["format"], "date-time");
    }

    #[test]
    fn ranges_run_forward_and_stay_within_a_month() {
        assert!(check_range(date("2027-03-01"), date("2027-03-31")).is_ok());
        assert!(check_range(date("2027-03-01"), date("2027-03-01")).is_ok());
        assert!(check_range(date("2027-03-01"), date("2027-04-01")).is_err());
        assert!(check_range(date("2027-03-02"), date("2027-03-01")).is_err());
        assert!(check_range(NaiveDate::MIN, NaiveDate::MAX).is_err());
    }
}
