//! The `reminders` table: one row per confirmed booking and offset, due `offset_minutes`
//! before the visit (migration 0008). Every statement that writes it lives here.
//!
//! ```text
//!  confirmed (new or moved-to) ── schedule ──► pending ── claim_due + close(sent) ──► sent
//!                                                │  └──── close(dropped) ───────────► dropped
//!  cancelled / moved away ── drop_pending ───────┘        (no longer confirmed at that time,
//!                                                          or already started)
//! ```
//!
//! - Written in the transaction that confirms the booking, so a confirmation always has its
//!   reminders and a rolled-back one has none. Offsets whose time has already passed are not
//!   written: a visit booked inside an offset gets no late reminder for it.
//! - [`claim_due`] reads the partial index `reminders_due` (pending rows only) and locks the
//!   rows it returns with `SKIP LOCKED`, so replicas share the work and never hold the same
//!   reminder; it also takes a share lock on the appointment (skipping one a decider holds), so
//!   a cancel or move being decided waits for, or is waited for by, the reminder.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// Writes the pending reminders of a booking just confirmed: one per offset of its center
/// (`centers.reminder_offsets_minutes`, else `default_offsets`) whose due time is still ahead
/// of `now`. Idempotent on (booking, offset).
pub async fn schedule(
    conn: &mut PgConnection,
    booking_id: Uuid,
    center_id: Uuid,
    starts_at: DateTime<Utc>,
    default_offsets: &[i32],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    schedule_many(
        conn,
        &[(booking_id, center_id, starts_at)],
        default_offsets,
        now,
    )
    .await
}

/// [`schedule`] for several bookings just confirmed, `(booking, center, starts_at)`, in one
/// statement.
pub async fn schedule_many(
    conn: &mut PgConnection,
    bookings: &[(Uuid, Uuid, DateTime<Utc>)],
    default_offsets: &[i32],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    if bookings.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = bookings.iter().map(|b| b.0).collect();
    let centers: Vec<Uuid> = bookings.iter().map(|b| b.1).collect();
    let starts: Vec<DateTime<Utc>> = bookings.iter().map(|b| b.2).collect();
    let done = sqlx::query(
        "INSERT INTO reminders (booking_id, offset_minutes, starts_at, due_at)
         SELECT DISTINCT b.id, o, b.starts_at, b.starts_at - make_interval(mins => o)
           FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[]) AS b(id, starts_at, center_id),
                unnest(COALESCE((SELECT reminder_offsets_minutes FROM centers
                                  WHERE id = b.center_id), $4::int[])) AS o
          WHERE b.starts_at - make_interval(mins => o) > $5
            AND EXISTS (SELECT 1 FROM centers WHERE id = b.center_id)
         ON CONFLICT (booking_id, offset_minutes) DO NOTHING",
    )
    .bind(&ids)
    .bind(&starts)
    .bind(&centers)
    .bind(default_offsets)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Drops the pending reminders of a booking that is cancelled or moved away (`detail` says
/// which), in the transaction that decides it.
pub async fn drop_pending(
    conn: &mut PgConnection,
    booking_id: Uuid,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reminders SET status = 'dropped', detail = $2, closed_at = now()
          WHERE booking_id = $1 AND status = 'pending'",
    )
    .bind(booking_id)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// A reminder whose time has come, with its booking as it is now.
#[derive(Debug, Clone)]
pub struct DueReminder {
    pub booking_id: Uuid,
    pub offset_minutes: i32,
    /// The visit's start when the reminder was scheduled.
    pub scheduled_for: DateTime<Utc>,
    pub status: String,
    pub attendance: Option<String>,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service_id: Option<Uuid>,
}

impl DueReminder {
    /// Why the reminder is no longer to be sent at `now`, if it is not: the booking is not
    /// confirmed any more (or its attendance is recorded), it moved to another time, or the
    /// visit has started (the reminder could not go out in time).
    pub fn stale(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.status != "confirmed" || self.attendance.is_some() {
            Some("not_confirmed")
        } else if self.starts_at != self.scheduled_for {
            Some("moved")
        } else if self.starts_at <= now {
            Some("started")
        } else {
            None
        }
    }
}

/// Locks up to `limit` pending reminders due at `now` (earliest first) until the end of the
/// transaction, skipping those another replica holds.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueReminder>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.booking_id, r.offset_minutes, r.starts_at AS scheduled_for, a.status,
                a.attendance, a.doctor_id, a.patient_id, a.center_id, a.starts_at, a.ends_at,
                a.service_id
           FROM reminders r JOIN appointments a ON a.id = r.booking_id
          WHERE r.status = 'pending' AND r.due_at <= $1
          ORDER BY r.due_at
          LIMIT $2
            FOR UPDATE OF r SKIP LOCKED
            FOR SHARE OF a SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DueReminder {
                booking_id: r.try_get("booking_id")?,
                offset_minutes: r.try_get("offset_minutes")?,
                scheduled_for: r.try_get("scheduled_for")?,
                status: r.try_get("status")?,
                attendance: r.try_get("attendance")?,
                doctor_id: r.try_get("doctor_id")?,
                patient_id: r.try_get("patient_id")?,
                center_id: r.try_get("center_id")?,
                starts_at: r.try_get("starts_at")?,
                ends_at: r.try_get("ends_at")?,
                service_id: r.try_get("service_id")?,
            })
        })
        .collect()
}

/// Closes a claimed reminder: `sent` once its event is acknowledged, or `dropped` with why.
pub async fn close(
    conn: &mut PgConnection,
    booking_id: Uuid,
    offset_minutes: i32,
    sent: bool,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reminders SET status = $3, detail = $4, closed_at = now()
          WHERE booking_id = $1 AND offset_minutes = $2 AND status = 'pending'",
    )
    .bind(booking_id)
    .bind(offset_minutes)
    .bind(if sent { "sent" } else { "dropped" })
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}
