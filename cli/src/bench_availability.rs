//! `citaflow bench-availability`: how fast `GET /availability` answers one center's week with
//! all its doctors over a realistic agenda, through the public API only.
//!
//! The run builds its own agenda under a unique prefix: a center, a service, `--doctors`
//! doctors who offer it and work there Monday to Friday 09:00–14:00 and 16:00–20:00, and
//! patients; then books `--appointments` distinct slots over `--weeks` weeks (confirmed by the
//! processor, `Prefer: wait`), so the weeks are about as full as a busy clinic's. It then asks
//! for the week in the middle `--requests` times, one request at a time after a warm-up, and
//! reports the latency percentiles as JSON.

use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Datelike, Duration as Days, NaiveDate, Utc};
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{Api, ApiArgs};

/// `citaflow bench-availability` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Doctors working at the benchmark's center.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub doctors: u32,

    /// Weeks of agenda to fill.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub weeks: u32,

    /// Appointments to book over those weeks (at most the free slots there).
    #[arg(long, default_value_t = 2000)]
    pub appointments: u32,

    /// Timed requests for the week in the middle (after 20 not timed).
    #[arg(long, default_value_t = 500)]
    pub requests: u32,

    /// Bookings in flight while filling the agenda.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Daily working ranges of the benchmark's doctors, local time.
const RANGES: [(&str, &str, u32, u32); 2] = [
    ("09:00", "14:00", 9 * 60, 14 * 60),
    ("16:00", "20:00", 16 * 60, 20 * 60),
];
const VISIT_MINUTES: u32 = 30;
const WEEKDAYS: [&str; 5] = ["monday", "tuesday", "wednesday", "thursday", "friday"];
/// Most future bookings a patient may hold (the API's default cap is 20).
const PER_PATIENT: u32 = 15;

async fn created(api: &Api, path: &str, body: Value) -> anyhow::Result<String> {
    let reply = api.send(Method::POST, path, Some(&body)).await?;
    if reply.status != StatusCode::CREATED {
        bail!("POST /{path}: {} ({})", reply.reason(), reply.status);
    }
    reply.body["id"]
        .as_str()
        .map(str::to_owned)
        .context("created without an id")
}

/// The Monday at least two days from today (so no slot is inside the booking notice).
fn first_monday(today: NaiveDate) -> NaiveDate {
    let mut day = today + Days::days(2);
    while day.weekday() != chrono::Weekday::Mon {
        day += Days::days(1);
    }
    day
}

/// Every bookable start of one doctor over `weeks` weeks from `monday`, as local date-times.
fn grid(monday: NaiveDate, weeks: u32) -> Vec<(NaiveDate, u32)> {
    let mut starts = Vec::new();
    for day in 0..weeks * 7 {
        let date = monday + Days::days(i64::from(day));
        if date.weekday().number_from_monday() > 5 {
            continue;
        }
        for (_, _, from, until) in RANGES {
            let mut minute = from;
            while minute + VISIT_MINUTES <= until {
                starts.push((date, minute));
                minute += VISIT_MINUTES;
            }
        }
    }
    starts
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let api = Api::connect(&args.api, args.concurrency + 2).await?;
    api.require_admin().await?;
    let prefix = format!("bench-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let tz = chrono_tz::Europe::Madrid;
    let center = created(
        &api,
        "centers",
        json!({"name": format!("Clínica {prefix}"), "address": "Calle Mayor 1, Madrid", "timezone": "Europe/Madrid"}),
    )
    .await?;
    let doctors = api.create_all(
        "doctors",
        (0..args.doctors)
            .map(|i| json!({"name": format!("Dr. {prefix} {i}"), "specialty": "Odontología", "username": format!("{prefix}-doctor-{i}")}))
            .collect(),
    )
    .await?;
    let service = created(
        &api,
        "services",
        json!({"name": format!("Revisión {prefix}"), "duration_minutes": VISIT_MINUTES, "doctor_ids": doctors}),
    )
    .await?;
    let monday = first_monday(Utc::now().date_naive());
    let center_ref = &center;
    let hours: Vec<Value> = doctors
        .iter()
        .flat_map(|doctor| {
            WEEKDAYS.iter().flat_map(move |weekday| {
                RANGES.iter().map(move |(start, end, _, _)| {
                    json!({"doctor_id": doctor, "center_id": center_ref, "weekday": weekday, "start": start, "end": end})
                })
            })
        })
        .collect();
    api.create_all("working-hours", hours).await?;

    // Distinct (doctor, start) pairs spread over the weeks: a deterministic shuffle.
    let starts = grid(monday, args.weeks);
    let mut slots: Vec<(usize, (NaiveDate, u32))> = (0..doctors.len())
        .flat_map(|d| starts.iter().map(move |s| (d, *s)))
        .collect();
    let total = slots.len();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..slots.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        slots.swap(i, (state % (i as u64 + 1)) as usize);
    }
    slots.truncate((args.appointments as usize).min(total));
    let patients = api.create_all(
        "patients",
        (0..slots.len().div_ceil(PER_PATIENT as usize))
            .map(|i| json!({"name": format!("Paciente {prefix} {i}"), "email": format!("{prefix}-{i}@example.test")}))
            .collect(),
    )
    .await?;

    let filling = Instant::now();
    let outcomes: Vec<anyhow::Result<StatusCode>> = stream::iter(slots.iter().enumerate())
        .map(|(i, (doctor, (date, minute)))| {
            let body = json!({
                "patient_id": patients[i / PER_PATIENT as usize],
                "doctor_id": doctors[*doctor],
                "center_id": center,
                "service_id": service,
                "start": citaflow_agenda::instant(tz, *date, *minute as u16).to_rfc3339(),
            });
            let api = api.clone();
            async move {
                let reply = api
                    .send_with(Method::POST, "bookings", Some(&body), Some(10))
                    .await?;
                Ok(reply.status)
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let mut confirmed = 0;
    for outcome in outcomes {
        match outcome? {
            StatusCode::CREATED => confirmed += 1,
            status => bail!("booking the agenda: answered {status} (expected 201 confirmed)"),
        }
    }
    let fill_secs = filling.elapsed().as_secs_f64();

    let week = monday + Days::weeks(i64::from(args.weeks / 2));
    let path = format!(
        "availability?service_id={service}&center_id={center}&from={week}&to={}",
        week + Days::days(6)
    );
    let mut free = 0;
    for _ in 0..20 {
        let reply = api.send(Method::GET, &path, None).await?;
        if reply.status != StatusCode::OK {
            bail!("GET /availability: {} ({})", reply.reason(), reply.status);
        }
        free = reply.body["days"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d["slots"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    for _ in 0..args.requests {
        let began = Instant::now();
        let response = api
            .request(Method::GET, &path, None)
            .send()
            .await
            .map_err(|e| api.transport_error(&e))?;
        let status = response.status();
        response
            .bytes()
            .await
            .map_err(|e| api.transport_error(&e))?;
        if status != StatusCode::OK {
            bail!("GET /availability answered {status}");
        }
        histogram.record(began.elapsed().as_micros().max(1) as u64)?;
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let week_slots = doctors.len() * grid(week, 1).len();
    let report = json!({
        "doctors": doctors.len(),
        "weeks": args.weeks,
        "appointments_confirmed": confirmed,
        "fill_seconds": (fill_secs * 10.0).round() / 10.0,
        "week": week.to_string(),
        "week_slots": week_slots,
        "week_free_slots": free,
        "requests": args.requests,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": histogram.max() as f64 / 1000.0,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_weekdays_in_both_ranges() {
        let monday = NaiveDate::from_ymd_opt(2027, 3, 22).unwrap();
        let starts = grid(monday, 1);
        // 10 half hours in the morning and 8 in the afternoon, five days.
        assert_eq!(starts.len(), 5 * 18);
        assert_eq!(starts[0], (monday, 9 * 60));
        assert_eq!(starts.last().unwrap().1, 19 * 60 + 30);
        assert_eq!(first_monday(monday).weekday(), chrono::Weekday::Mon);
        assert!(first_monday(monday) >= monday + Days::days(2));
    }
}
