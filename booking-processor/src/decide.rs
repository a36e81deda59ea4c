//! The decision: one database transaction per command that checks the rules, writes the
//! outcome, records the events to publish and marks the command processed.
//!
//! Guarantees kept here:
//! - Idempotency: a command already in `processed_commands` is not decided again; its
//!   recorded events are returned so they can be published again (a crash may have happened
//!   between the commit and the publish).
//! - No double booking: a per-doctor advisory lock serialises deciders of one doctor across
//!   processor replicas, and the `appointments_no_overlap` exclusion constraint is the final
//!   word (SQLSTATE 23P01 becomes a `slot_taken` rejection).
//! - Event ids are derived from the command id, so an event decided twice (a crash before the
//!   commit) keeps its id and consumers de-duplicate it.

use chrono::{DateTime, Utc};
use citaflow_booking_store::{self as store, Existing, Outcome};
use citaflow_platform::settings::ProcessorSettings;
use citaflow_schemas::{BookingEvent, BookingEventKind, BookingStatus};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::{
    command::{Action, Cancel, Command, Create},
    error::ProcessError,
};

/// Limits on what a booking may look like.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub min_duration_minutes: i64,
    pub max_duration_minutes: i64,
}

impl From<&ProcessorSettings> for Rules {
    fn from(settings: &ProcessorSettings) -> Self {
        Self {
            min_duration_minutes: settings.min_duration_minutes,
            max_duration_minutes: settings.max_duration_minutes,
        }
    }
}

/// A business rejection: final, never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Decides `command` and returns the events to publish (already recorded).
pub async fn decide(
    pool: &PgPool,
    rules: Rules,
    command: &Command,
) -> Result<Vec<BookingEvent>, ProcessError> {
    let mut tx = pool.begin().await?;
    if already_processed(&mut tx, command.command_id).await? {
        drop(tx);
        return recorded_events(pool, command.command_id).await;
    }
    let doctor_id = command.doctor_id();
    // Serialise deciders of one doctor across replicas (the partitioning already does, except
    // during a rebalance hand-over).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(doctor_id)
        .execute(&mut *tx)
        .await?;

    let now = Utc::now();
    let drafts = match &command.action {
        Action::Create(create) => decide_create(&mut tx, rules, command, create, now).await?,
        Action::Cancel(cancel) => decide_cancel(&mut tx, cancel, now).await?,
        Action::Expire(expire) => decide_expire(&mut tx, expire, now).await?,
        Action::Reschedule(create) => {
            decide_reschedule(&mut tx, rules, command, create, now).await?
        }
    };

    let events = record(&mut tx, command, drafts, now).await?;
    tx.commit().await?;
    Ok(events)
}

/// Records the events of a decision and marks its command processed (same transaction).
async fn record(
    conn: &mut PgConnection,
    command: &Command,
    drafts: Vec<Draft>,
    now: DateTime<Utc>,
) -> Result<Vec<BookingEvent>, ProcessError> {
    let mut events = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let event = draft.into_event(command.command_id, now);
        sqlx::query(
            "INSERT INTO booking_events (event_id, command_id, booking_id, kind, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(Uuid::parse_str(&event.event_id).expect("generated"))
        .bind(command.command_id)
        .bind(Uuid::parse_str(&event.booking_id).expect("generated"))
        .bind(format!("{:?}", event.kind).to_uppercase())
        .bind(sqlx::types::Json(&event))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        events.push(event);
    }
    // Wake API requests waiting for these outcomes (`Prefer: wait`); delivered on commit.
    let mut notified = Vec::new();
    for event in &events {
        let booking_id = Uuid::parse_str(&event.booking_id).expect("generated");
        if !notified.contains(&booking_id) {
            store::notify_decided(&mut *conn, booking_id).await?;
            notified.push(booking_id);
        }
    }
    sqlx::query(
        "INSERT INTO processed_commands (command_id, booking_id, kind) VALUES ($1, $2, $3)",
    )
    .bind(command.command_id)
    .bind(command.booking_id())
    .bind(command.kind())
    .execute(&mut *conn)
    .await?;
    Ok(events)
}

/// Whether `command_id` has been decided.
pub async fn is_processed(pool: &PgPool, command_id: Uuid) -> Result<bool, ProcessError> {
    let mut conn = pool.acquire().await?;
    already_processed(&mut conn, command_id).await
}

/// Closes a command that reached the dead-letter topic: a new booking (create or the new half
/// of a reschedule) still pending ends `rejected` with `retries_exhausted` (or
/// `invalid_command` when it was dead-lettered as unusable); a cancel changes nothing. Returns
/// the events to publish (those recorded earlier when it was already processed).
pub async fn close_dead_letter(
    pool: &PgPool,
    command: &Command,
    reason: &str,
) -> Result<Vec<BookingEvent>, ProcessError> {
    let mut tx = pool.begin().await?;
    if already_processed(&mut tx, command.command_id).await? {
        drop(tx);
        return recorded_events(pool, command.command_id).await;
    }
    let now = Utc::now();
    let drafts = match &command.action {
        Action::Create(create) | Action::Reschedule(create) => {
            let rejection = if reason == "exhausted" {
                Rejection::new(
                    "retries_exhausted",
                    "The request could not be processed after several attempts because of a technical problem.",
                )
            } else {
                Rejection::new("invalid_command", "The request could not be processed.")
            };
            if write_booking(&mut tx, command, create, Some(&rejection), now).await? {
                vec![Draft::for_create(
                    create,
                    BookingEventKind::Rejected,
                    BookingStatus::Rejected,
                    Some(rejection),
                )]
            } else {
                vec![]
            }
        }
        // A dead-lettered expire still closes a booking nobody else will decide.
        Action::Expire(expire) => decide_expire(&mut tx, expire, now).await?,
        Action::Cancel(_) => vec![],
    };
    let events = record(&mut tx, command, drafts, now).await?;
    tx.commit().await?;
    Ok(events)
}

async fn already_processed(
    conn: &mut PgConnection,
    command_id: Uuid,
) -> Result<bool, ProcessError> {
    Ok(
        sqlx::query("SELECT 1 FROM processed_commands WHERE command_id = $1")
            .bind(command_id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// The events recorded for a processed command, in the order they were decided.
pub async fn recorded_events(
    pool: &PgPool,
    command_id: Uuid,
) -> Result<Vec<BookingEvent>, ProcessError> {
    let rows = sqlx::query("SELECT payload FROM booking_events WHERE command_id = $1 ORDER BY seq")
        .bind(command_id)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            let payload: sqlx::types::Json<BookingEvent> = row.try_get("payload")?;
            Ok(payload.0)
        })
        .collect()
}

/// An event before its id and time are fixed.
struct Draft {
    kind: BookingEventKind,
    status: BookingStatus,
    booking_id: Uuid,
    doctor_id: Uuid,
    patient_id: Uuid,
    center_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    rejection: Option<Rejection>,
    previous_booking_id: Option<Uuid>,
}

impl Draft {
    fn into_event(self, command_id: Uuid, now: DateTime<Utc>) -> BookingEvent {
        let label = format!("{:?}:{}", self.kind, self.booking_id);
        BookingEvent {
            event_id: Uuid::new_v5(&command_id, label.as_bytes()).to_string(),
            kind: self.kind,
            booking_id: self.booking_id.to_string(),
            command_id: command_id.to_string(),
            doctor_id: self.doctor_id.to_string(),
            patient_id: self.patient_id.to_string(),
            center_id: self.center_id.to_string(),
            starts_at: self.starts_at.timestamp_millis(),
            ends_at: self.ends_at.timestamp_millis(),
            status: self.status,
            reason_code: self.rejection.as_ref().map(|r| r.code.to_string()),
            reason_message: self.rejection.map(|r| r.message),
            previous_booking_id: self.previous_booking_id.map(|id| id.to_string()),
            occurred_at: now.timestamp_millis(),
            service_id: None,
        }
    }

    fn for_create(
        create: &Create,
        kind: BookingEventKind,
        status: BookingStatus,
        rejection: Option<Rejection>,
    ) -> Self {
        Draft {
            kind,
            status,
            booking_id: create.booking_id,
            doctor_id: create.doctor_id,
            patient_id: create.patient_id,
            center_id: create.center_id,
            starts_at: create.slot.starts_at,
            ends_at: create.slot.ends_at,
            rejection,
            previous_booking_id: create.previous_booking_id,
        }
    }
}

/// The rules every new appointment must pass, checked against the database in one round trip.
async fn check_rules(
    conn: &mut PgConnection,
    rules: Rules,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<Option<Rejection>, ProcessError> {
    let (doctor, center, patient, taken): (Option<bool>, Option<bool>, Option<String>, bool) =
        sqlx::query_as(
            "SELECT (SELECT active FROM doctors WHERE id = $1),
                    (SELECT active FROM centers WHERE id = $2),
                    (SELECT status FROM patients WHERE id = $3),
                    EXISTS (SELECT 1 FROM appointments
                             WHERE doctor_id = $1 AND status = 'confirmed' AND id <> $4
                               AND tstzrange(starts_at, ends_at, '[)') && tstzrange($5, $6, '[)'))",
        )
        .bind(create.doctor_id)
        .bind(create.center_id)
        .bind(create.patient_id)
        .bind(create.booking_id)
        .bind(create.slot.starts_at)
        .bind(create.slot.ends_at)
        .fetch_one(&mut *conn)
        .await?;
    Ok(judge(
        rules,
        create,
        now,
        doctor,
        center,
        patient.as_deref(),
        taken,
    ))
}

/// The verdict, from what the database said, in the order a clinic would explain it.
fn judge(
    rules: Rules,
    create: &Create,
    now: DateTime<Utc>,
    doctor: Option<bool>,
    center: Option<bool>,
    patient: Option<&str>,
    taken: bool,
) -> Option<Rejection> {
    let minutes = create.slot.duration_minutes();
    match (doctor, center, patient) {
        (None, _, _) => Some(Rejection::new(
            "doctor_not_found",
            "The doctor does not exist.",
        )),
        (Some(false), _, _) => Some(Rejection::new(
            "doctor_inactive",
            "The doctor is not active.",
        )),
        (_, None, _) => Some(Rejection::new(
            "center_not_found",
            "The center does not exist.",
        )),
        (_, Some(false), _) => Some(Rejection::new(
            "center_inactive",
            "The center is not active.",
        )),
        (_, _, None) => Some(Rejection::new(
            "patient_not_found",
            "The patient does not exist.",
        )),
        (_, _, Some(status)) if status != "ACTIVE" => Some(Rejection::new(
            "patient_inactive",
            "The patient is not active.",
        )),
        _ if create.slot.starts_at <= now => Some(Rejection::new(
            "slot_in_past",
            "The requested time has already passed.",
        )),
        _ if minutes < rules.min_duration_minutes || minutes > rules.max_duration_minutes => {
            Some(Rejection::new(
                "invalid_duration",
                format!(
                    "Appointments last between {} and {} minutes.",
                    rules.min_duration_minutes, rules.max_duration_minutes
                ),
            ))
        }
        _ if taken => Some(slot_taken()),
        _ => None,
    }
}

fn slot_taken() -> Rejection {
    Rejection::new(
        "slot_taken",
        "The doctor already has an appointment at that time.",
    )
}

/// Writes the decided state of a new booking (see [`store::write_decided`]).
async fn write_booking(
    conn: &mut PgConnection,
    command: &Command,
    create: &Create,
    rejection: Option<&Rejection>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let outcome = match rejection {
        None => Outcome::Confirmed,
        Some(r) => Outcome::Rejected {
            code: r.code,
            message: &r.message,
        },
    };
    store::write_decided(conn, &create.appointment(command), outcome, now).await
}

/// Confirms the booking if every rule passes; the exclusion constraint has the final word.
/// Runs inside a savepoint so a constraint violation leaves the transaction usable.
async fn try_confirm(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<(Option<Rejection>, bool), ProcessError> {
    if let Some(rejection) = check_rules(conn, rules, create, now).await? {
        return Ok((Some(rejection), false));
    }
    sqlx::query("SAVEPOINT confirm").execute(&mut *conn).await?;
    match write_booking(conn, command, create, None, now).await {
        Ok(written) => {
            sqlx::query("RELEASE SAVEPOINT confirm")
                .execute(&mut *conn)
                .await?;
            Ok((None, written))
        }
        Err(err) if store::is_overlap(&err) => {
            sqlx::query("ROLLBACK TO SAVEPOINT confirm")
                .execute(&mut *conn)
                .await?;
            Ok((Some(slot_taken()), false))
        }
        Err(err) => Err(err.into()),
    }
}

async fn decide_create(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<Vec<Draft>, ProcessError> {
    let (rejection, confirmed) = try_confirm(conn, rules, command, create, now).await?;
    match rejection {
        None if confirmed => Ok(vec![Draft::for_create(
            create,
            BookingEventKind::Confirmed,
            BookingStatus::Confirmed,
            None,
        )]),
        // Already decided elsewhere: nothing new happened.
        None => Ok(vec![]),
        Some(rejection) => {
            if write_booking(conn, command, create, Some(&rejection), now).await? {
                Ok(vec![Draft::for_create(
                    create,
                    BookingEventKind::Rejected,
                    BookingStatus::Rejected,
                    Some(rejection),
                )])
            } else {
                Ok(vec![])
            }
        }
    }
}

fn cancelled_draft(
    booking_id: Uuid,
    existing: &Existing,
    code: &'static str,
    message: &str,
) -> Draft {
    Draft {
        kind: BookingEventKind::Cancelled,
        status: BookingStatus::Cancelled,
        booking_id,
        doctor_id: existing.doctor_id,
        patient_id: existing.patient_id,
        center_id: existing.center_id,
        starts_at: existing.starts_at,
        ends_at: existing.ends_at,
        rejection: Some(Rejection::new(code, message)),
        previous_booking_id: None,
    }
}

async fn decide_cancel(
    conn: &mut PgConnection,
    cancel: &Cancel,
    now: DateTime<Utc>,
) -> Result<Vec<Draft>, ProcessError> {
    let Some(existing) = store::lock_existing(conn, cancel.booking_id).await? else {
        return Ok(vec![]);
    };
    if !existing.is_active() {
        // Cancelled twice or already rejected: nothing to do, nothing to announce.
        return Ok(vec![]);
    }
    let message = "The appointment was cancelled.";
    store::mark_cancelled(
        conn,
        cancel.booking_id,
        "cancelled_by_request",
        message,
        now,
    )
    .await?;
    Ok(vec![cancelled_draft(
        cancel.booking_id,
        &existing,
        "cancelled_by_request",
        message,
    )])
}

/// Closes a booking that is still pending as `rejected` (`not_accepted`): every command
/// produced for its doctor before this one has been decided, so its own request never came.
async fn decide_expire(
    conn: &mut PgConnection,
    expire: &Cancel,
    now: DateTime<Utc>,
) -> Result<Vec<Draft>, ProcessError> {
    let Some(existing) = store::lock_existing(conn, expire.booking_id).await? else {
        return Ok(vec![]);
    };
    if existing.status != "pending"
        || !store::close_not_accepted(&mut *conn, expire.booking_id, now).await?
    {
        return Ok(vec![]);
    }
    let mut draft = cancelled_draft(
        expire.booking_id,
        &existing,
        store::NOT_ACCEPTED,
        store::NOT_ACCEPTED_MESSAGE,
    );
    draft.kind = BookingEventKind::Rejected;
    draft.status = BookingStatus::Rejected;
    Ok(vec![draft])
}

/// Confirms the new slot and cancels the old booking in one decision; if the new slot cannot
/// be confirmed, the old booking stays as it was.
async fn decide_reschedule(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<Vec<Draft>, ProcessError> {
    let previous_id = create
        .previous_booking_id
        .expect("a reschedule names its previous booking");
    let previous = store::lock_existing(conn, previous_id).await?;
    let reject = |rejection: Rejection| {
        vec![Draft::for_create(
            create,
            BookingEventKind::Rejected,
            BookingStatus::Rejected,
            Some(rejection),
        )]
    };
    let previous = match previous {
        Some(p) if p.is_active() => p,
        Some(_) => {
            let rejection = Rejection::new(
                "previous_not_active",
                "The appointment to move is no longer active.",
            );
            write_booking(conn, command, create, Some(&rejection), now).await?;
            return Ok(reject(rejection));
        }
        None => {
            let rejection = Rejection::new(
                "previous_not_found",
                "The appointment to move does not exist.",
            );
            write_booking(conn, command, create, Some(&rejection), now).await?;
            return Ok(reject(rejection));
        }
    };
    if previous.patient_id != create.patient_id {
        let rejection = Rejection::new(
            "previous_other_patient",
            "The appointment to move belongs to another patient.",
        );
        write_booking(conn, command, create, Some(&rejection), now).await?;
        return Ok(reject(rejection));
    }

    // Free the old slot first (a move within the same doctor may overlap it), then try the
    // new one; on failure roll back to keep the old appointment exactly as it was.
    sqlx::query("SAVEPOINT reschedule")
        .execute(&mut *conn)
        .await?;
    let message = "The appointment was moved to a new time.";
    store::mark_cancelled(conn, previous_id, "rescheduled", message, now).await?;
    let (rejection, confirmed) = try_confirm(conn, rules, command, create, now).await?;
    match rejection {
        None if confirmed => {
            sqlx::query("RELEASE SAVEPOINT reschedule")
                .execute(&mut *conn)
                .await?;
            Ok(vec![
                Draft::for_create(
                    create,
                    BookingEventKind::Rescheduled,
                    BookingStatus::Confirmed,
                    None,
                ),
                cancelled_draft(previous_id, &previous, "rescheduled", message),
            ])
        }
        None => {
            sqlx::query("ROLLBACK TO SAVEPOINT reschedule")
                .execute(&mut *conn)
                .await?;
            Ok(vec![])
        }
        Some(rejection) => {
            sqlx::query("ROLLBACK TO SAVEPOINT reschedule")
                .execute(&mut *conn)
                .await?;
            write_booking(conn, command, create, Some(&rejection), now).await?;
            Ok(reject(rejection))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Slot;

    fn create(starts_in_minutes: i64, minutes: i64) -> Create {
        let starts_at = Utc::now() + chrono::Duration::minutes(starts_in_minutes);
        Create {
            booking_id: Uuid::new_v4(),
            doctor_id: Uuid::new_v4(),
            patient_id: Uuid::new_v4(),
            center_id: Uuid::new_v4(),
            slot: Slot {
                starts_at,
                ends_at: starts_at + chrono::Duration::minutes(minutes),
            },
            reason: None,
            previous_booking_id: None,
        }
    }

    const RULES: Rules = Rules {
        min_duration_minutes: 5,
        max_duration_minutes: 480,
    };

    fn code(r: Option<Rejection>) -> &'static str {
        r.map(|r| r.code).unwrap_or("ok")
    }

    #[test]
    fn rules_are_explained_in_order() {
        let c = create(60, 30);
        let now = Utc::now();
        assert_eq!(
            code(judge(RULES, &c, now, None, None, None, true)),
            "doctor_not_found"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(false),
                Some(true),
                Some("ACTIVE"),
                false
            )),
            "doctor_inactive"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(true),
                None,
                Some("ACTIVE"),
                false
            )),
            "center_not_found"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(true),
                Some(false),
                Some("ACTIVE"),
                false
            )),
            "center_inactive"
        );
        assert_eq!(
            code(judge(RULES, &c, now, Some(true), Some(true), None, false)),
            "patient_not_found"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(true),
                Some(true),
                Some("INACTIVE"),
                false
            )),
            "patient_inactive"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(true),
                Some(true),
                Some("ACTIVE"),
                true
            )),
            "slot_taken"
        );
        assert_eq!(
            code(judge(
                RULES,
                &c,
                now,
                Some(true),
                Some(true),
                Some("ACTIVE"),
                false
            )),
            "ok"
        );
    }

    #[test]
    fn time_rules() {
        let now = Utc::now();
        let all_good =
            |c: &Create| judge(RULES, c, now, Some(true), Some(true), Some("ACTIVE"), false);
        assert_eq!(code(all_good(&create(-5, 30))), "slot_in_past");
        assert_eq!(code(all_good(&create(60, 4))), "invalid_duration");
        assert_eq!(code(all_good(&create(60, 481))), "invalid_duration");
        assert_eq!(code(all_good(&create(60, 480))), "ok");
    }
}
