//! The doctors, patients and centers a run books with: created for the run under a unique
//! prefix, or with `--reuse` the active ones already in the API.

use anyhow::bail;
use serde_json::{Value, json};
use uuid::Uuid;

use super::LoadArgs;
use crate::api::Api;

/// What the run prepared or reused.
pub(super) struct Directory {
    pub centers: Vec<String>,
    pub doctors: Vec<String>,
    pub patients: Vec<String>,
    pub prefix: Option<String>,
}

pub(super) async fn prepare(api: &Api, args: &LoadArgs) -> anyhow::Result<Directory> {
    if args.reuse {
        let ids = |items: Vec<Value>| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let centers = ids(api
            .list_all("centers?active=true", args.centers as usize)
            .await?);
        let doctors = ids(api
            .list_all("doctors?active=true", args.doctors as usize)
            .await?);
        let patients = ids(api
            .list_all("patients?status=ACTIVE", args.patients as usize)
            .await?);
        if centers.is_empty() || doctors.is_empty() || patients.is_empty() {
            bail!(
                "--reuse needs at least one active center, doctor and patient in the API (run `citaflow import` first, or drop --reuse)"
            );
        }
        let take = |mut v: Vec<String>, n: u32| {
            v.truncate(n as usize);
            v
        };
        return Ok(Directory {
            centers: take(centers, args.centers),
            doctors: take(doctors, args.doctors),
            patients: take(patients, args.patients),
            prefix: None,
        });
    }
    let prefix = format!("load-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let specialties = [
        "Odontología",
        "Ortodoncia",
        "Medicina general",
        "Pediatría",
        "Dermatología",
    ];
    let centers = (0..args.centers)
        .map(|i| json!({"name": format!("Carga {prefix} centro {i}"), "address": format!("Calle de la Prueba {i}, Madrid"), "timezone": "Europe/Madrid", "language": "es"}))
        .collect();
    let doctors = (0..args.doctors)
        .map(|i| json!({"name": format!("Dr. Carga {i} ({prefix})"), "specialty": specialties[i as usize % specialties.len()], "username": format!("{prefix}-dr-{i}")}))
        .collect();
    let patients = (0..args.patients)
        .map(|i| json!({"name": format!("Paciente de carga {i}"), "email": format!("{prefix}-p{i}@example.com"), "language": if i % 5 == 0 { "en" } else { "es" }}))
        .collect();
    Ok(Directory {
        centers: api.create_all("centers", centers).await?,
        doctors: api.create_all("doctors", doctors).await?,
        patients: api.create_all("patients", patients).await?,
        prefix: Some(prefix),
    })
}
