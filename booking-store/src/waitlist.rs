//! The waitlist's openings and offers (migration 0009): every statement booking-processor's
//! waitlist worker runs. Entries are written by ingest-api (`/waitlist`).
//!
//! ```text
//!  CANCELLED event ── record_opening ──► opening open ── offer ──► offer open ──┬─ accept (API) ─► accepted ─┬─ CONFIRMED ─► taken (+ entry booked, opening filled)
//!                                           ▲   │                               │                            └─ REJECTED ──► failed
//!                                           │   │ close_opening                 ├─ decline (API) ─► declined
//!                                           │   ▼ (filled | exhausted | past)   └─ claim_lapsed ──► expired
//!                                           └─────────── next round offers the next entry ─────────┘
//! ```
//!
//! - An opening is recorded only when someone waits at its center (for its doctor or any), so
//!   cancellations nobody waits for cost one indexed probe and no row.
//! - Offers are made one opening at a time, to the first entry in order of joining that fits
//!   (its service offered by the doctor, its dates, its service's visit free and within hours:
//!   the caller checks the last two) and that was not offered this opening before. Partial
//!   unique indexes keep one live offer per opening, per doctor's slot and per entry.
//! - Rounds lock what they work on with `SKIP LOCKED`, so replicas share the work.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// Records the slot a cancelled booking freed, if its time is still ahead and someone waits at
/// its center for its doctor (or any doctor). Idempotent on the event. Returns whether a row
/// was written.
#[allow(clippy::too_many_arguments)]
pub async fn record_opening(
    conn: &mut PgConnection,
    event_id: Uuid,
    freed_booking_id: Uuid,
    doctor_id: Uuid,
    center_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO waitlist_openings (id, source_event_id, freed_booking_id, doctor_id,
                                        center_id, starts_at, ends_at)
         SELECT $1, $2, $3, $4, $5, $6, $7
          WHERE $6 > $8
            AND EXISTS (SELECT 1 FROM waitlist_entries
                         WHERE status = 'waiting' AND center_id = $5
                           AND (doctor_id IS NULL OR doctor_id = $4))
         ON CONFLICT (source_event_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(event_id)
    .bind(freed_booking_id)
    .bind(doctor_id)
    .bind(center_id)
    .bind(starts_at)
    .bind(ends_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A booking was confirmed: an offer it was taking is `taken` and its opening `filled`, and
/// the patient's waiting entries it satisfies (same center and service, its doctor if the
/// entry names one, its local date within the entry's) are `booked`. Idempotent.
pub async fn booked(
    conn: &mut PgConnection,
    booking_id: Uuid,
    patient_id: Uuid,
    center_id: Uuid,
    doctor_id: Uuid,
    service_id: Option<Uuid>,
    starts_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH taken AS (
             UPDATE waitlist_offers SET status = 'taken', closed_at = now()
              WHERE booking_id = $1 AND status = 'accepted'
          RETURNING opening_id)
         UPDATE waitlist_openings SET status = 'filled', closed_at = now()
          WHERE id IN (SELECT opening_id FROM taken) AND status = 'open'",
    )
    .bind(booking_id)
    .execute(&mut *conn)
    .await?;
    let Some(service_id) = service_id else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE waitlist_entries e
            SET status = 'booked', booking_id = $1, closed_at = now()
           FROM centers c
          WHERE e.patient_id = $2 AND e.status = 'waiting' AND e.center_id = $3
            AND c.id = e.center_id AND e.service_id = $5
            AND (e.doctor_id IS NULL OR e.doctor_id = $4)
            AND ($6 AT TIME ZONE c.timezone)::date BETWEEN e.date_from AND e.date_to",
    )
    .bind(booking_id)
    .bind(patient_id)
    .bind(center_id)
    .bind(doctor_id)
    .bind(service_id)
    .bind(starts_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A booking was rejected: an offer it was taking is `failed` (the entry keeps waiting).
pub async fn rejected(conn: &mut PgConnection, booking_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE waitlist_offers SET status = 'failed', closed_at = now()
          WHERE booking_id = $1 AND status = 'accepted'",
    )
    .bind(booking_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A live or closed offer, as its events describe it.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: Uuid,
    pub opening_id: Uuid,
    pub entry_id: Uuid,
    pub freed_booking_id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    pub service_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub hold_until: DateTime<Utc>,
}

/// Claims up to `limit` open offers whose hold has lapsed by `now` and closes them `expired`
/// (visible once the transaction commits, after their events are published).
pub async fn claim_lapsed(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Offer>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH lapsed AS (
             SELECT id FROM waitlist_offers
              WHERE status = 'open' AND hold_until <= $1
              ORDER BY hold_until LIMIT $2
                FOR UPDATE SKIP LOCKED)
         UPDATE waitlist_offers f SET status = 'expired', closed_at = now()
           FROM lapsed, waitlist_openings o
          WHERE f.id = lapsed.id AND o.id = f.opening_id
         RETURNING f.id, f.opening_id, f.entry_id, o.freed_booking_id, f.patient_id,
                   f.doctor_id, f.center_id, f.service_id, f.starts_at, f.ends_at,
                   f.hold_until",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|r| offer(&r)).collect()
}

fn offer(r: &sqlx::postgres::PgRow) -> Result<Offer, sqlx::Error> {
    Ok(Offer {
        id: r.try_get("id")?,
        opening_id: r.try_get("opening_id")?,
        entry_id: r.try_get("entry_id")?,
        freed_booking_id: r.try_get("freed_booking_id")?,
        patient_id: r.try_get("patient_id")?,
        doctor_id: r.try_get("doctor_id")?,
        center_id: r.try_get("center_id")?,
        service_id: r.try_get("service_id")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        hold_until: r.try_get("hold_until")?,
    })
}

/// An opening to offer, with its center's time zone.
#[derive(Debug, Clone)]
pub struct Opening {
    pub id: Uuid,
    pub freed_booking_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
}

/// Claims up to `limit` open openings that have no live offer (oldest first), locked until
/// the transaction ends.
pub async fn claim_unoffered(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Opening>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.id, o.freed_booking_id, o.doctor_id, o.center_id, o.starts_at, o.ends_at,
                c.timezone
           FROM waitlist_openings o JOIN centers c ON c.id = o.center_id
          WHERE o.status = 'open'
            AND NOT EXISTS (SELECT 1 FROM waitlist_offers f
                             WHERE f.opening_id = o.id AND f.status IN ('open', 'accepted'))
          ORDER BY o.created_at
          LIMIT $1
            FOR UPDATE OF o SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Opening {
                id: r.try_get("id")?,
                freed_booking_id: r.try_get("freed_booking_id")?,
                doctor_id: r.try_get("doctor_id")?,
                center_id: r.try_get("center_id")?,
                starts_at: r.try_get("starts_at")?,
                ends_at: r.try_get("ends_at")?,
                timezone: r.try_get("timezone")?,
            })
        })
        .collect()
}

/// Closes an opening: `filled`, `exhausted` or `past`.
pub async fn close_opening(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE waitlist_openings SET status = $2, closed_at = now()
          WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// A waiting entry that may take an opening, with its service's visit.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub service_id: Uuid,
    pub duration_minutes: i32,
    pub buffer_before_minutes: i32,
    pub buffer_after_minutes: i32,
}

/// The entries that may be offered `opening`, first come first: waiting at its center, for its
/// doctor or any, for an active service the doctor offers, its local date within their dates,
/// not offered this opening before and holding no other live offer. Locked (`SKIP LOCKED`:
/// an entry another replica is offering now is left to it).
pub async fn candidates(
    conn: &mut PgConnection,
    opening: &Opening,
    local_date: NaiveDate,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.id, e.patient_id, e.service_id, s.duration_minutes,
                s.buffer_before_minutes, s.buffer_after_minutes
           FROM waitlist_entries e
           JOIN services s ON s.id = e.service_id AND s.active
           JOIN doctor_services ds ON ds.service_id = e.service_id AND ds.doctor_id = $2
          WHERE e.status = 'waiting' AND e.center_id = $3
            AND (e.doctor_id IS NULL OR e.doctor_id = $2)
            AND $4 BETWEEN e.date_from AND e.date_to
            AND NOT EXISTS (SELECT 1 FROM waitlist_offers f
                             WHERE f.entry_id = e.id
                               AND (f.opening_id = $1 OR f.status IN ('open', 'accepted')))
          ORDER BY e.created_at, e.id
          LIMIT $5
            FOR UPDATE OF e SKIP LOCKED",
    )
    .bind(opening.id)
    .bind(opening.doctor_id)
    .bind(opening.center_id)
    .bind(local_date)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Candidate {
                entry_id: r.try_get("id")?,
                patient_id: r.try_get("patient_id")?,
                service_id: r.try_get("service_id")?,
                duration_minutes: r.try_get("duration_minutes")?,
                buffer_before_minutes: r.try_get("buffer_before_minutes")?,
                buffer_after_minutes: r.try_get("buffer_after_minutes")?,
            })
        })
        .collect()
}

/// Whether the doctor's time `from..until` is free of confirmed visits (their
/// occupied time, buffers included).
pub async fn time_is_free(
    conn: &mut PgConnection,
    doctor_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let busy: bool = sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM appointments
              WHERE doctor_id = $1 AND status = 'confirmed'
                AND tstzrange(coalesce(occupied_from, starts_at),
                              coalesce(occupied_until, ends_at), '[)')
                    && tstzrange($2, $3, '[)'))",
    )
    .bind(doctor_id)
    .bind(from)
    .bind(until)
    .fetch_one(conn)
    .await?;
    Ok(!busy)
}

/// Writes an open offer of `opening` to `candidate`'s patient for `starts_at..ends_at`, held
/// until `hold_until`.
pub async fn insert_offer(conn: &mut PgConnection, offer: &Offer) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO waitlist_offers (id, opening_id, entry_id, patient_id, doctor_id, center_id,
                                      service_id, starts_at, ends_at, hold_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(offer.id)
    .bind(offer.opening_id)
    .bind(offer.entry_id)
    .bind(offer.patient_id)
    .bind(offer.doctor_id)
    .bind(offer.center_id)
    .bind(offer.service_id)
    .bind(offer.starts_at)
    .bind(offer.ends_at)
    .bind(offer.hold_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Notes that the offer's WAITLIST_OFFERED event was acknowledged.
pub async fn mark_published(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE waitlist_offers SET published_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes `lapsed` the waiting entries whose last date has gone by at their center.
pub async fn lapse_entries(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE waitlist_entries e SET status = 'lapsed', closed_at = now()
           FROM centers c
          WHERE e.status = 'waiting' AND c.id = e.center_id
            AND e.date_to < ($1 AT TIME ZONE c.timezone)::date",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
