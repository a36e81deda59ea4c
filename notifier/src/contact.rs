//! Contact details resolved from the directory at send time (events carry none).

use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::templates::{Context, Lang};

/// Who to write to and what to say around the event.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub context: Context,
}

/// Looks up the patient, center and doctor of an event. `None` when the patient is unknown
/// (e.g. a booking rejected because the patient does not exist).
pub async fn resolve(
    pool: &PgPool,
    patient_id: Uuid,
    center_id: Uuid,
    doctor_id: Uuid,
    default_lang: Lang,
) -> Result<Option<Recipient>, sqlx::Error> {
    let Some(patient) =
        sqlx::query("SELECT name, email, phone, language FROM patients WHERE id = $1")
            .bind(patient_id)
            .fetch_optional(pool)
            .await?
    else {
        return Ok(None);
    };
    let center = sqlx::query("SELECT name, address, timezone, language FROM centers WHERE id = $1")
        .bind(center_id)
        .fetch_optional(pool)
        .await?;
    let doctor_name: Option<String> =
        sqlx::query_scalar("SELECT name FROM doctors WHERE id = $1")
            .bind(doctor_id)
            .fetch_optional(pool)
            .await?;

    let patient_lang: Option<String> = patient.try_get("language")?;
    let center_lang: Option<String> =
        center.as_ref().map(|c| c.try_get("language")).transpose()?.flatten();
    let lang = patient_lang
        .as_deref()
        .and_then(Lang::parse)
        .or_else(|| center_lang.as_deref().and_then(Lang::parse))
        .unwrap_or(default_lang);
    let time_zone = center
        .as_ref()
        .map(|c| c.try_get::<String, _>("timezone"))
        .transpose()?
        .and_then(|tz| tz.parse().ok())
        .unwrap_or(chrono_tz::Europe::Madrid);
    Ok(Some(Recipient {
        email: patient.try_get("email")?,
        phone: patient.try_get("phone")?,
        context: Context {
            patient_name: patient.try_get("name")?,
            doctor_name,
            center_name: center.as_ref().map(|c| c.try_get("name")).transpose()?,
            center_address: center.as_ref().map(|c| c.try_get("address")).transpose()?,
            time_zone,
            lang,
        },
    }))
}
