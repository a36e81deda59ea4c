//! The demo appointment booked after `citaflow import`: the first doctor and active patient
//! of the files, for the first service of services.csv the doctor offers, at the first free
//! slot `GET /availability` offers in the next 14 days (at whichever of the doctor's centers
//! it is). A later run finds the appointment an earlier one booked (by its reason) instead of
//! booking another.

use std::{collections::HashMap, time::Duration};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    api::{Api, encode_query},
    import::{Kind, Row},
};

/// Reason written on the demo appointment, which is how a later run recognises it.
const DEMO_REASON: &str = "Cita de demostración (citaflow import)";
/// Days searched for a free slot, from today.
const SEARCH_DAYS: i64 = 14;

/// Books one appointment with the first doctor and active patient of the files (or finds the
/// one an earlier run booked). Answers the booking and whether it already existed.
pub async fn book(api: &Api, present: &HashMap<Kind, Vec<Row>>) -> anyhow::Result<(Value, bool)> {
    let rows = |kind: Kind| present.get(&kind).map(Vec::as_slice).unwrap_or_default();
    // Ids come from the API by natural key: the CSVs never carry them.
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
    let (doctor_id, patient_id) = (ids(&doctor)?, ids(&patient)?);

    // The doctor's bookings from now on: an earlier demo booking is reused.
    let now = Utc::now();
    let agenda = api
        .list_all(
            &format!(
                "bookings?doctor_id={doctor_id}&from={}",
                encode_query(&now.to_rfc3339_opts(SecondsFormat::Secs, true))
            ),
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

    // The first service of services.csv the doctor offers (else the first the API lists).
    let offered = api
        .list_all(&format!("services?doctor_id={doctor_id}&active=true"), 1000)
        .await?;
    let file_order: Vec<String> = rows(Kind::Services)
        .iter()
        .filter_map(|r| r.get("name"))
        .map(|n| n.trim().to_lowercase())
        .collect();
    let service = pick_service(&offered, &file_order).with_context(|| {
        format!("doctor {doctor_username:?} offers no active service (see doctor_services.csv)")
    })?;
    let service_id = ids(service)?;
    let service_name = service["name"].as_str().unwrap_or_default();

    let from = now.date_naive();
    let to = from + chrono::Duration::days(SEARCH_DAYS - 1);
    let reply = api
        .send(
            Method::GET,
            &format!(
                "availability?service_id={service_id}&doctor_id={doctor_id}&from={from}&to={to}"
            ),
            None,
        )
        .await?;
    if reply.status != StatusCode::OK {
        bail!("GET /availability: {} ({})", reply.reason(), reply.status);
    }
    let slots = free_slots(&reply.body);
    if slots.is_empty() {
        bail!(
            "no free slot for {service_name:?} with doctor {doctor_username:?} from {from} to {to}: \
             GET /availability offers none (does the doctor have working hours? see working_hours.csv)"
        );
    }

    // A slot can be taken between the search and the booking (availability does not hide
    // pending requests): then the next one is tried, a few times.
    for slot in slots.iter().take(5) {
        let body = json!({
            "patient_id": patient_id, "doctor_id": doctor_id, "center_id": slot.center_id,
            "service_id": service_id, "start": slot.start, "reason": DEMO_REASON,
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
    bail!(
        "the first {} free slots for {service_name:?} with doctor {doctor_username:?} were taken meanwhile",
        slots.len().min(5)
    )
}

/// A free slot offered by `GET /availability`.
#[derive(Debug, PartialEq)]
pub struct Slot {
    /// RFC 3339 with the center's UTC offset, as the API gave it (and takes it back).
    pub start: String,
    pub center_id: String,
}

/// The slots of an availability answer, earliest first (the API lists days in order and each
/// day's slots by start; sorted here by instant all the same).
pub fn free_slots(availability: &Value) -> Vec<Slot> {
    let mut slots: Vec<(DateTime<Utc>, Slot)> = availability["days"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|day| day["slots"].as_array().into_iter().flatten())
        .filter_map(|slot| {
            let start = slot["start"].as_str()?;
            let at = DateTime::parse_from_rfc3339(start)
                .ok()?
                .with_timezone(&Utc);
            Some((
                at,
                Slot {
                    start: start.to_owned(),
                    center_id: slot["center_id"].as_str()?.to_owned(),
                },
            ))
        })
        .collect();
    slots.sort_by_key(|(at, _)| *at);
    slots.into_iter().map(|(_, slot)| slot).collect()
}

/// The first of `offered` (services from the API) in `file_order` (lower-case names of
/// services.csv), else the first offered.
pub fn pick_service<'a>(offered: &'a [Value], file_order: &[String]) -> Option<&'a Value> {
    let position = |s: &Value| {
        let name = s["name"].as_str().unwrap_or_default().trim().to_lowercase();
        file_order
            .iter()
            .position(|n| *n == name)
            .unwrap_or(usize::MAX)
    };
    offered.iter().min_by_key(|s| position(s))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_earliest_first_with_the_center_they_are_at() {
        let answer = json!({
            "service": {"id": "s1", "name": "Revisión", "duration_minutes": 30},
            "from": "2027-03-26", "to": "2027-03-28",
            "days": [
                {"date": "2027-03-26", "slots": []},
                {"date": "2027-03-27", "slots": [
                    // 09:00 in the Canaries is 10:00 in Madrid: the Madrid slot is earlier.
                    {"start": "2027-03-27T09:00:00+00:00", "end": "2027-03-27T09:30:00+00:00",
                     "doctor_id": "d1", "center_id": "canarias"},
                    {"start": "2027-03-27T09:30:00+01:00", "end": "2027-03-27T10:00:00+01:00",
                     "doctor_id": "d1", "center_id": "madrid"}]},
                {"date": "2027-03-28", "slots": [
                    {"start": "2027-03-28T09:00:00+02:00", "end": "2027-03-28T09:30:00+02:00",
                     "doctor_id": "d1", "center_id": "madrid"}]}
            ],
            "doctors": [], "centers": []
        });
        assert_eq!(
            free_slots(&answer),
            [
                Slot {
                    start: "2027-03-27T09:30:00+01:00".into(),
                    center_id: "madrid".into()
                },
                Slot {
                    start: "2027-03-27T09:00:00+00:00".into(),
                    center_id: "canarias".into()
                },
                Slot {
                    start: "2027-03-28T09:00:00+02:00".into(),
                    center_id: "madrid".into()
                },
            ]
        );
        assert!(free_slots(&json!({"days": []})).is_empty());
    }

    #[test]
    fn the_demo_service_is_the_first_of_the_file_the_doctor_offers() {
        let offered = [
            json!({"id": "s2", "name": "Empaste"}),
            json!({"id": "s1", "name": "Revisión"}),
            json!({"id": "s9", "name": "Otro"}),
        ];
        let order = [
            "revisión".to_owned(),
            "limpieza dental".to_owned(),
            "empaste".to_owned(),
        ];
        assert_eq!(pick_service(&offered, &order).unwrap()["id"], "s1");
        assert_eq!(pick_service(&offered[2..], &order).unwrap()["id"], "s9");
        assert!(pick_service(&[], &order).is_none());
    }
}
