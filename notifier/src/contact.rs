//! Contact details and context resolved from the directory at send time: events carry ids
//! only, never names, emails or phones.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::templates::{CalendarRef, Context, Lang};

/// Who to write to and what to say around the event. `Debug` shows no personal data.
#[derive(Clone)]
pub struct Recipient {
    /// As stored; the channel parses it.
    pub email: Option<String>,
    /// As stored; the SMS channel checks it is E.164.
    pub phone: Option<String>,
    pub context: Context,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("has_email", &self.email.is_some())
            .field("has_phone", &self.phone.is_some())
            .field("lang", &self.context.lang)
            .finish_non_exhaustive()
    }
}

/// The ids of an event that contact resolution needs.
#[derive(Debug, Clone, Copy)]
pub struct EventIds {
    pub booking_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub doctor_id: Uuid,
    pub previous_booking_id: Option<Uuid>,
}

/// Whether the waitlist offer `offer_id` is still held for its patient: its message is sent
/// only then (a late reader does not offer a slot that went to the next patient). `None`: no
/// such offer (yet: the processor publishes the offer before its transaction commits).
pub async fn offer_still_open(pool: &PgPool, offer_id: Uuid) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT status = 'open' AND hold_until > now() FROM waitlist_offers WHERE id = $1",
    )
    .bind(offer_id)
    .fetch_optional(pool)
    .await
}

/// Whether the booking is still confirmed, with no attendance recorded, at the start (epoch
/// milliseconds) an event announced: a reminder is sent only then.
pub async fn still_confirmed(
    pool: &PgPool,
    booking_id: Uuid,
    starts_at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT status = 'confirmed' AND attendance IS NULL
                AND (extract(epoch FROM starts_at) * 1000)::bigint = $2
           FROM appointments WHERE id = $1",
    )
    .bind(booking_id)
    .bind(starts_at_ms)
    .fetch_optional(pool)
    .await?;
    Ok(found.unwrap_or(false))
}

/// Looks up the patient, center, doctor and the booking's history. `None` when the patient is
/// unknown (e.g. a booking rejected because the patient does not exist).
pub async fn resolve(
    pool: &PgPool,
    ids: EventIds,
    default_lang: Lang,
) -> Result<Option<Recipient>, sqlx::Error> {
    // One round trip for the patient, the center and the doctor.
    let Some(row) = sqlx::query(
        "SELECT p.name, p.email, p.phone, p.language,
                c.name AS center_name, c.address AS center_address,
                c.timezone AS center_timezone, c.language AS center_language,
                (SELECT d.name FROM doctors d WHERE d.id = $3) AS doctor_name
           FROM patients p LEFT JOIN centers c ON c.id = $2
          WHERE p.id = $1",
    )
    .bind(ids.patient_id)
    .bind(ids.center_id)
    .bind(ids.doctor_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let history = history(pool, ids.booking_id, ids.previous_booking_id).await?;

    let patient_lang: Option<String> = row.try_get("language")?;
    let center_lang: Option<String> = row.try_get("center_language")?;
    let lang = patient_lang
        .as_deref()
        .and_then(Lang::parse)
        .or_else(|| center_lang.as_deref().and_then(Lang::parse))
        .unwrap_or(default_lang);
    let time_zone = row
        .try_get::<Option<String>, _>("center_timezone")?
        .and_then(|tz| tz.parse().ok())
        .unwrap_or(chrono_tz::Europe::Madrid);
    Ok(Some(Recipient {
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        context: Context {
            patient_name: row.try_get("name")?,
            doctor_name: row.try_get("doctor_name")?,
            center_name: row.try_get("center_name")?,
            center_address: row.try_get("center_address")?,
            time_zone,
            lang,
            previous_starts_at: history.previous_starts_at,
            calendar: history.calendar,
            organizer: None,
            app_url: String::new(),
        },
    }))
}

/// Where a booking stands in its chain of reschedules.
struct History {
    calendar: CalendarRef,
    previous_starts_at: Option<DateTime<Utc>>,
}

/// Follows `previous_booking_id` back to the first booking of the chain (bounded, in case of a
/// cycle that should never exist). A booking not yet in the table is its own first booking.
async fn history(
    pool: &PgPool,
    booking_id: Uuid,
    previous_booking_id: Option<Uuid>,
) -> Result<History, sqlx::Error> {
    let root: Option<(Uuid, i32)> = sqlx::query_as(
        "WITH RECURSIVE chain (id, previous_booking_id, depth) AS (
             SELECT id, previous_booking_id, 0 FROM appointments WHERE id = $1
             UNION ALL
             SELECT a.id, a.previous_booking_id, c.depth + 1
               FROM appointments a JOIN chain c ON a.id = c.previous_booking_id
              WHERE c.depth < 100
         )
         SELECT id, depth FROM chain ORDER BY depth DESC LIMIT 1",
    )
    .bind(booking_id)
    .fetch_optional(pool)
    .await?;
    let previous_starts_at = match previous_booking_id {
        Some(previous) => {
            sqlx::query_scalar("SELECT starts_at FROM appointments WHERE id = $1")
                .bind(previous)
                .fetch_optional(pool)
                .await?
        }
        None => None,
    };
    let (uid, sequence) = root.unwrap_or((booking_id, 0));
    Ok(History {
        calendar: CalendarRef {
            uid: uid.to_string(),
            sequence: sequence.max(0) as u32,
        },
        previous_starts_at,
    })
}
