//! The booking's storage: every statement that writes the `appointments` row lives here, so
//! its state machine reads in one file. ingest-api and booking-processor both call it.
//!
//! ```text
//!            insert_pending            write_decided
//!  (request) ─────────────► pending ─────────────────► confirmed ──┐ mark_cancelled
//!                              │   └───────────────► rejected      ├──────────────► cancelled
//!                              │ close_not_accepted     ▲          │
//!                              └──────► rejected        │ (retries_exhausted may be
//!                                      (not_accepted)   └  re-decided by a late command)
//!
//!  confirmed, once started ── mark_attendance ──► confirmed + attendance (attended | no_show)
//! ```
//!
//! - `pending` is written by the API before it publishes the command, so a GET right after the
//!   202 finds the booking. The insert is idempotent on the booking id.
//! - The decided write is an upsert: it also recreates a pending row the database lost (the
//!   pending insert does not wait for the WAL flush), and it only changes a row that is still
//!   `pending` (or closed `retries_exhausted`), so a decision never overwrites another.
//! - A confirmed row is guarded by the `appointments_no_overlap` exclusion constraint: a
//!   violation (SQLSTATE 23P01, [`is_overlap`]) means the slot is taken.
//! - Attendance is a column beside the status, not a status: an attended (or missed) visit
//!   still occupies its time, so the constraint and the agenda see it as before. It is written
//!   only on a confirmed row whose start has passed ([`mark_attendance`]); once written the
//!   booking is no longer active ([`Existing::is_active`]): it cannot be cancelled or moved.
//! - A confirmation writes its reminders and a cancel or move drops them, in the same
//!   transaction ([`reminders`]).
//! - Every decision sends a notice on [`DECIDED_CHANNEL`] in its transaction (the processor's
//!   statement that records its events); API requests waiting for the
//!   outcome (`Prefer: wait`) listen on [`DECIDED_CHANNEL`]. The notice is delivered on commit.

pub mod reminders;
pub mod waitlist;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, Postgres, Row, postgres::PgArguments, query::Query};
use uuid::Uuid;

/// The PostgreSQL channel on which a decided booking is announced; the payload is its id.
pub const DECIDED_CHANNEL: &str = "citaflow_booking_decided";

/// What a booking request asks for: the columns every new appointment row starts with.
#[derive(Debug, Clone, Copy)]
pub struct NewAppointment<'a> {
    pub id: Uuid,
    pub command_id: Uuid,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<&'a str>,
    /// Set when this booking is the new half of a reschedule.
    pub previous_booking_id: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    /// The kind of visit booked, when the request named one.
    pub service_id: Option<Uuid>,
}

/// The outcome the processor writes for a new booking.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Confirmed, keeping the doctor busy over `occupied` (the visit widened by the service's
    /// buffers), which the no-overlap constraint guards.
    Confirmed {
        occupied_from: DateTime<Utc>,
        occupied_until: DateTime<Utc>,
    },
    Rejected {
        code: &'a str,
        message: &'a str,
    },
}

/// Binds the request's columns as `$1`…`$12`, in the order both inserts name them.
fn bind_request<'q>(
    query: Query<'q, Postgres, PgArguments>,
    booking: &NewAppointment<'q>,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(booking.id)
        .bind(booking.command_id)
        .bind(booking.doctor_id)
        .bind(booking.patient_id)
        .bind(booking.center_id)
        .bind(booking.starts_at)
        .bind(booking.ends_at)
        .bind(booking.reason)
        .bind(booking.previous_booking_id)
        .bind(booking.requested_by)
        .bind(booking.requested_at)
        .bind(booking.service_id)
}

/// Records a new booking as `pending` (idempotent on its id).
///
/// The row is visible at once but committed without waiting for the WAL flush: it only mirrors
/// the command, which Kafka keeps durably. If PostgreSQL crashed within the flush delay, the
/// processor recreates the row when it decides the command ([`write_decided`] is an upsert).
/// `set_config(.., true)` scopes the setting to this statement's own transaction, in one round
/// trip.
pub async fn insert_pending<'c>(
    db: impl PgExecutor<'c>,
    booking: &NewAppointment<'_>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO appointments (id, command_id, doctor_id, patient_id, center_id,
                                   starts_at, ends_at, reason, previous_booking_id,
                                   requested_by, requested_at, service_id, status)
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending'
                 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed_durability
               ON CONFLICT (id) DO NOTHING";
    bind_request(sqlx::query(sql), booking).execute(db).await?;
    Ok(())
}

/// The reason of a booking whose request was never processed.
pub const NOT_ACCEPTED: &str = "not_accepted";
pub const NOT_ACCEPTED_MESSAGE: &str = "The request could not be queued; it was not processed.";

/// Closes a booking that was never processed as `rejected` (`not_accepted`), unless it was
/// decided meanwhile: the API after a failed publish, the processor when an expiry finds it
/// still pending (see [`stale_pending`]). Returns whether the row was closed.
pub async fn close_not_accepted<'c>(
    db: impl PgExecutor<'c>,
    booking_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE appointments
            SET status = 'rejected', reason_code = $2, reason_message = $3,
                decided_at = $4, updated_at = now()
          WHERE id = $1 AND status = 'pending'",
    )
    .bind(booking_id)
    .bind(NOT_ACCEPTED)
    .bind(NOT_ACCEPTED_MESSAGE)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Bookings still `pending` that were requested before `before` (oldest first, at most
/// `limit`), with their doctors: candidates for an expiry command. Reads the partial index
/// `appointments_pending`, so it costs the number of pending rows, not the table.
pub async fn stale_pending<'c>(
    db: impl PgExecutor<'c>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, doctor_id FROM appointments
          WHERE status = 'pending' AND requested_at < $1
          ORDER BY requested_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Writes the decided state of a new booking. Returns `false` when the booking was already
/// decided by something else (e.g. cancelled while its command waited in a retry topic).
///
/// A confirmation may fail with the exclusion constraint ([`is_overlap`]): run it inside a
/// savepoint to keep the transaction usable.
pub async fn write_decided(
    conn: &mut PgConnection,
    booking: &NewAppointment<'_>,
    outcome: Outcome<'_>,
    decided_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    Ok(write_decided_many(conn, &[(*booking, outcome)], decided_at).await? == 1)
}

/// Writes the decided states of new bookings in one statement (see [`write_decided`]).
/// Returns how many were written; a booking already decided by something else is not.
pub async fn write_decided_many(
    conn: &mut PgConnection,
    decisions: &[(NewAppointment<'_>, Outcome<'_>)],
    decided_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut rows = DecidedRows::default();
    for (booking, outcome) in decisions {
        rows.push(booking, *outcome);
    }
    let sql = "INSERT INTO appointments (id, command_id, doctor_id, patient_id, center_id,
                   starts_at, ends_at, reason, previous_booking_id, requested_by, requested_at,
                   service_id, status, reason_code, reason_message, decided_at,
                   occupied_from, occupied_until)
               SELECT id, command_id, doctor_id, patient_id, center_id, starts_at, ends_at,
                      reason, previous_booking_id, requested_by, requested_at, service_id,
                      status, reason_code, reason_message, $16, occupied_from, occupied_until
                 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::uuid[],
                             $10::uuid[], $11::timestamptz[], $12::uuid[], $13::text[],
                             $14::text[], $15::text[], $17::timestamptz[], $18::timestamptz[])
                      AS r(id, command_id, doctor_id, patient_id, center_id, starts_at,
                           ends_at, reason, previous_booking_id, requested_by, requested_at,
                           service_id, status, reason_code, reason_message, occupied_from,
                           occupied_until)
               ON CONFLICT (id) DO UPDATE
                  SET status = EXCLUDED.status, reason_code = EXCLUDED.reason_code,
                      reason_message = EXCLUDED.reason_message,
                      decided_at = EXCLUDED.decided_at, service_id = EXCLUDED.service_id,
                      occupied_from = EXCLUDED.occupied_from,
                      occupied_until = EXCLUDED.occupied_until, updated_at = now()
                WHERE appointments.status = 'pending'
                   OR (appointments.status = 'rejected'
                       AND appointments.reason_code = 'retries_exhausted')";
    let done = sqlx::query(sql)
        .bind(rows.id)
        .bind(rows.command_id)
        .bind(rows.doctor_id)
        .bind(rows.patient_id)
        .bind(rows.center_id)
        .bind(rows.starts_at)
        .bind(rows.ends_at)
        .bind(rows.reason)
        .bind(rows.previous_booking_id)
        .bind(rows.requested_by)
        .bind(rows.requested_at)
        .bind(rows.service_id)
        .bind(rows.status)
        .bind(rows.reason_code)
        .bind(rows.reason_message)
        .bind(decided_at)
        .bind(rows.occupied_from)
        .bind(rows.occupied_until)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Decided bookings as columns, for one multi-row write.
#[derive(Default)]
struct DecidedRows<'a> {
    id: Vec<Uuid>,
    command_id: Vec<Uuid>,
    doctor_id: Vec<Uuid>,
    patient_id: Vec<Uuid>,
    center_id: Vec<Uuid>,
    starts_at: Vec<DateTime<Utc>>,
    ends_at: Vec<DateTime<Utc>>,
    reason: Vec<Option<&'a str>>,
    previous_booking_id: Vec<Option<Uuid>>,
    requested_by: Vec<Option<Uuid>>,
    requested_at: Vec<DateTime<Utc>>,
    service_id: Vec<Option<Uuid>>,
    status: Vec<&'static str>,
    reason_code: Vec<Option<&'a str>>,
    reason_message: Vec<Option<&'a str>>,
    occupied_from: Vec<Option<DateTime<Utc>>>,
    occupied_until: Vec<Option<DateTime<Utc>>>,
}

impl<'a> DecidedRows<'a> {
    fn push(&mut self, booking: &NewAppointment<'a>, outcome: Outcome<'a>) {
        let (status, code, message, occupied) = match outcome {
            Outcome::Confirmed {
                occupied_from,
                occupied_until,
            } => (
                "confirmed",
                None,
                None,
                Some((occupied_from, occupied_until)),
            ),
            Outcome::Rejected { code, message } => ("rejected", Some(code), Some(message), None),
        };
        self.id.push(booking.id);
        self.command_id.push(booking.command_id);
        self.doctor_id.push(booking.doctor_id);
        self.patient_id.push(booking.patient_id);
        self.center_id.push(booking.center_id);
        self.starts_at.push(booking.starts_at);
        self.ends_at.push(booking.ends_at);
        self.reason.push(booking.reason);
        self.previous_booking_id.push(booking.previous_booking_id);
        self.requested_by.push(booking.requested_by);
        self.requested_at.push(booking.requested_at);
        self.service_id.push(booking.service_id);
        self.status.push(status);
        self.reason_code.push(code);
        self.reason_message.push(message);
        self.occupied_from.push(occupied.map(|o| o.0));
        self.occupied_until.push(occupied.map(|o| o.1));
    }
}

/// Whether `err` is the exclusion constraint refusing an overlapping confirmed appointment.
pub fn is_overlap(err: &sqlx::Error) -> bool {
    err.as_database_error().and_then(|e| e.code()).as_deref() == Some("23P01")
}

/// The columns a change of an existing booking needs (cancel, the old half of a move).
#[derive(Debug, Clone)]
pub struct Existing {
    pub status: String,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service_id: Option<Uuid>,
    /// Whether the patient came, once staff recorded it.
    pub attendance: Option<Attendance>,
}

impl Existing {
    /// Whether the booking still holds (or may still hold) its slot and may still be cancelled
    /// or moved: pending, or confirmed with no attendance recorded yet.
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "confirmed") && self.attendance.is_none()
    }
}

/// Whether the patient came to a visit, as staff record it after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attendance {
    Attended,
    NoShow,
}

impl Attendance {
    /// The value of the `attendance` column (and of the API's `outcome`).
    pub fn as_str(self) -> &'static str {
        match self {
            Attendance::Attended => "attended",
            Attendance::NoShow => "no_show",
        }
    }

    /// Reads the `attendance` column.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "attended" => Some(Attendance::Attended),
            "no_show" => Some(Attendance::NoShow),
            _ => None,
        }
    }
}

/// Reads a booking and locks its row until the end of the transaction.
pub async fn lock_existing(
    conn: &mut PgConnection,
    booking_id: Uuid,
) -> Result<Option<Existing>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT status, doctor_id, patient_id, center_id, starts_at, ends_at, service_id,
                attendance
           FROM appointments WHERE id = $1 FOR UPDATE",
    )
    .bind(booking_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Existing {
            status: r.try_get("status")?,
            doctor_id: r.try_get("doctor_id")?,
            patient_id: r.try_get("patient_id")?,
            center_id: r.try_get("center_id")?,
            starts_at: r.try_get("starts_at")?,
            ends_at: r.try_get("ends_at")?,
            service_id: r.try_get("service_id")?,
            attendance: r
                .try_get::<Option<String>, _>("attendance")?
                .as_deref()
                .and_then(Attendance::parse),
        })
    })
    .transpose()
}

/// Records whether the patient came, on a confirmed booking whose start is before `now`
/// (a correction overwrites an earlier mark). Returns whether the row was changed; the
/// processor has read the row under lock first ([`lock_existing`]), so `false` only means the
/// rule did not hold.
pub async fn mark_attendance(
    conn: &mut PgConnection,
    booking_id: Uuid,
    attendance: Attendance,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE appointments
            SET attendance = $2, attendance_marked_at = $3, updated_at = now()
          WHERE id = $1 AND status = 'confirmed' AND starts_at <= $3
            AND attendance IS DISTINCT FROM $2",
    )
    .bind(booking_id)
    .bind(attendance.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks a booking `cancelled` with the reason (`cancelled_by_request`, `rescheduled`).
pub async fn mark_cancelled(
    conn: &mut PgConnection,
    booking_id: Uuid,
    code: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments
            SET status = 'cancelled', cancelled_at = $2, reason_code = $3, reason_message = $4,
                decided_at = COALESCE(decided_at, $2), updated_at = now()
          WHERE id = $1",
    )
    .bind(booking_id)
    .bind(now)
    .bind(code)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(())
}

/// The booking named by a notice on [`DECIDED_CHANNEL`].
pub fn decided_booking(payload: &str) -> Option<Uuid> {
    Uuid::parse_str(payload).ok()
}
