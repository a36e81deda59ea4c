//! The demo appointment booked after `citaflow import`: the first center, doctor and active
//! patient of the files, at the first free 30-minute slot on a weekday morning. A later run
//! finds the appointment an earlier one booked (by its reason) instead of booking another.

use std::{collections::HashMap, time::Duration};

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    api::{Api, encode_query},
    import::{Kind, Row},
};

/// Reason written on the demo appointment, which is how a later run recognises it.
const DEMO_REASON: &str = "Cita de demostración (citaflow import)";
const DEMO_MINUTES: i64 = 30;

/// Books one appointment with the first center, doctor and active patient of the files (or
/// finds the one an earlier run booked). Answers the booking and whether it already existed.
pub async fn book(api: &Api, present: &HashMap<Kind, Vec<Row>>) -> anyhow::Result<(Value, bool)> {
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
