//! The decision: one database transaction, for one command or a batch of a partition's
//! commands in offset order, that checks the rules, writes the outcome, records the events to
//! publish and marks the commands processed.
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
//! - Every recorded event names its actor (the user who sent the command and their role), in
//!   the deciding transaction: the booking's history (`GET /bookings/{id}/history`) reads it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use citaflow_agenda as agenda;
use citaflow_booking_store::{self as store, Attendance, Existing, Outcome};
use citaflow_platform::settings::ProcessorSettings;
use citaflow_schemas::{BookingEvent, BookingEventKind, BookingStatus};
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    command::{Action, Cancel, Command, Create, Mark},
    error::ProcessError,
};

/// Limits on what a booking may look like.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub min_duration_minutes: i64,
    pub max_duration_minutes: i64,
    /// The platform's reminder offsets (a center may have its own).
    pub reminders: ReminderOffsets,
}

/// Up to 10 reminder offsets in minutes (`processor.reminder_offsets_minutes`), kept inline so
/// that [`Rules`] stays `Copy`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReminderOffsets {
    minutes: [i32; 10],
    len: usize,
}

impl ReminderOffsets {
    pub fn new(offsets: &[u32]) -> Self {
        let mut out = Self::default();
        for &o in offsets.iter().take(10) {
            out.minutes[out.len] = i32::try_from(o).unwrap_or(i32::MAX);
            out.len += 1;
        }
        out
    }

    pub fn as_slice(&self) -> &[i32] {
        &self.minutes[..self.len]
    }
}

impl From<&ProcessorSettings> for Rules {
    fn from(settings: &ProcessorSettings) -> Self {
        Self {
            min_duration_minutes: settings.min_duration_minutes,
            max_duration_minutes: settings.max_duration_minutes,
            reminders: ReminderOffsets::new(&settings.reminder_offsets_minutes),
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

/// How a confirmation meets the exclusion constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Inside a savepoint: a violation becomes a `slot_taken` rejection (one command per
    /// transaction).
    Savepoint,
    /// Unguarded: a violation fails the whole batch, which is then decided again one command
    /// per transaction. The rules already read the doctor's confirmed appointments under the
    /// doctor's lock, so this only happens when a decider outside the lock raced it.
    Batch,
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
    lock_doctors(&mut tx, &[command.doctor_id()]).await?;
    let now = Utc::now();
    let drafts = decide_one(&mut tx, rules, command, now, Guard::Savepoint).await?;
    let events = into_events(command, drafts, now);
    record(&mut tx, &[(command, events.as_slice())], now).await?;
    tx.commit().await?;
    Ok(events)
}

/// Decides `commands` in order in one transaction and returns each one's events to publish
/// (recorded now, or earlier for a command already processed), in the same order.
///
/// Statements per batch: one probe for commands already processed, one statement taking every
/// doctor's lock, for each run of creates four (their rules' facts, their doctors' agendas,
/// every outcome, the reminders: see [`decide_creates`]), the statements of each other
/// command (cancel, reschedule, expiry, attendance) as it would run alone, and one statement
/// recording every event, marking every command processed and waking the API's waiters. Any error leaves nothing behind (the transaction rolls back): the
/// caller then decides the same commands one per transaction, where each gets its own outcome.
pub async fn decide_batch(
    pool: &PgPool,
    rules: Rules,
    commands: &[Command],
) -> Result<Vec<Vec<BookingEvent>>, ProcessError> {
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = commands.iter().map(|c| c.command_id).collect();
    let done: HashSet<Uuid> =
        sqlx::query_scalar("SELECT command_id FROM processed_commands WHERE command_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let mut doctors: Vec<Uuid> = commands
        .iter()
        .filter(|c| !done.contains(&c.command_id))
        .map(Command::doctor_id)
        .collect();
    doctors.sort_unstable();
    doctors.dedup();
    lock_doctors(&mut tx, &doctors).await?;

    let now = Utc::now();
    let mut outcomes: Vec<Option<Vec<BookingEvent>>> = Vec::with_capacity(commands.len());
    // The creates gathered since the last other command, decided together (`decide_creates`).
    let mut creates: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    for (i, command) in commands.iter().enumerate() {
        // Decided earlier (its events are read below), or twice in this batch (a redelivered
        // record): decided once, published once.
        if done.contains(&command.command_id) || !seen.insert(command.command_id) {
            outcomes.push(None);
            continue;
        }
        if matches!(command.action, Action::Create(_)) {
            outcomes.push(Some(Vec::new()));
            creates.push(i);
            continue;
        }
        decide_gathered(&mut tx, rules, commands, &mut creates, &mut outcomes, now).await?;
        let drafts = decide_one(&mut tx, rules, command, now, Guard::Batch).await?;
        outcomes.push(Some(into_events(command, drafts, now)));
    }
    decide_gathered(&mut tx, rules, commands, &mut creates, &mut outcomes, now).await?;
    let decided: Vec<(&Command, &[BookingEvent])> = commands
        .iter()
        .zip(&outcomes)
        .filter_map(|(c, o)| o.as_deref().map(|events| (c, events)))
        .collect();
    record(&mut tx, &decided, now).await?;
    let mut earlier = if done.is_empty() {
        HashMap::new()
    } else {
        events_of(&mut tx, &done.iter().copied().collect::<Vec<_>>()).await?
    };
    tx.commit().await?;
    Ok(commands
        .iter()
        .zip(outcomes)
        .map(|(c, o)| o.unwrap_or_else(|| earlier.remove(&c.command_id).unwrap_or_default()))
        .collect())
}

/// Decides the creates gathered in `creates` (indexes into `commands`) and fills in their
/// events; leaves `creates` empty.
async fn decide_gathered(
    conn: &mut PgConnection,
    rules: Rules,
    commands: &[Command],
    creates: &mut Vec<usize>,
    outcomes: &mut [Option<Vec<BookingEvent>>],
    now: DateTime<Utc>,
) -> Result<(), ProcessError> {
    if creates.is_empty() {
        return Ok(());
    }
    let run: Vec<(&Command, &Create)> = creates
        .iter()
        .filter_map(|&i| match &commands[i].action {
            Action::Create(create) => Some((&commands[i], create)),
            _ => None,
        })
        .collect();
    let drafts = decide_creates(conn, rules, &run, now).await?;
    for (&i, drafts) in creates.iter().zip(drafts) {
        outcomes[i] = Some(into_events(&commands[i], drafts, now));
    }
    creates.clear();
    Ok(())
}

/// Serialises deciders of these doctors across replicas (the partitioning already does,
/// except during a rebalance hand-over). Taken in id order, so two batches never wait on each
/// other in a cycle.
async fn lock_doctors(conn: &mut PgConnection, doctors: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(d::text, 7))
           FROM unnest($1::uuid[]) WITH ORDINALITY AS l(d, n) ORDER BY n",
    )
    .bind(doctors)
    .execute(conn)
    .await?;
    Ok(())
}

/// The decision of one command, inside the caller's transaction and the doctor's lock.
async fn decide_one(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    now: DateTime<Utc>,
    guard: Guard,
) -> Result<Vec<Draft>, ProcessError> {
    match &command.action {
        Action::Create(create) => decide_create(conn, rules, command, create, now, guard).await,
        Action::Cancel(cancel) => decide_cancel(conn, cancel, now).await,
        Action::Expire(expire) => decide_expire(conn, expire, now).await,
        Action::Reschedule(create) => {
            decide_reschedule(conn, rules, command, create, now, guard).await
        }
        Action::MarkAttendance(mark) => decide_attendance(conn, mark, now).await,
    }
}

fn into_events(command: &Command, drafts: Vec<Draft>, now: DateTime<Utc>) -> Vec<BookingEvent> {
    drafts
        .into_iter()
        .map(|draft| draft.into_event(command.command_id, now))
        .collect()
}

/// Records decisions in one statement: each event with its actor (the command's sender and
/// their role when decided), in order; each command marked processed; and a notice per
/// decided booking to wake API requests waiting for it (`Prefer: wait`), delivered on commit.
async fn record(
    conn: &mut PgConnection,
    decided: &[(&Command, &[BookingEvent])],
    now: DateTime<Utc>,
) -> Result<(), ProcessError> {
    if decided.is_empty() {
        return Ok(());
    }
    let events = decided
        .iter()
        .flat_map(|(c, events)| events.iter().map(move |e| (*c, e)));
    let mut event_ids = Vec::new();
    let mut event_commands = Vec::new();
    let mut bookings = Vec::new();
    let mut kinds = Vec::new();
    let mut payloads = Vec::new();
    let mut actors = Vec::new();
    for (command, event) in events {
        event_ids.push(Uuid::parse_str(&event.event_id).expect("generated"));
        event_commands.push(command.command_id);
        bookings.push(Uuid::parse_str(&event.booking_id).expect("generated"));
        // The Avro symbol (`NO_SHOW`), as consumers of the topic read it.
        kinds.push(symbol(event.kind));
        payloads.push(sqlx::types::Json(event));
        actors.push(command.requested_by);
    }
    let commands: Vec<Uuid> = decided.iter().map(|(c, _)| c.command_id).collect();
    let command_bookings: Vec<Uuid> = decided.iter().map(|(c, _)| c.booking_id()).collect();
    let command_kinds: Vec<&str> = decided.iter().map(|(c, _)| c.kind()).collect();
    sqlx::query(
        "WITH events AS (
             INSERT INTO booking_events (event_id, command_id, booking_id, kind, payload,
                                         occurred_at, actor_id, actor_role)
             SELECT e.event_id, e.command_id, e.booking_id, e.kind, e.payload, $7, e.actor_id,
                    (SELECT role FROM users WHERE id = e.actor_id)
               FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[],
                           $6::uuid[]) WITH ORDINALITY
                    AS e(event_id, command_id, booking_id, kind, payload, actor_id, n)
              ORDER BY e.n
             ON CONFLICT (event_id) DO NOTHING),
         processed AS (
             INSERT INTO processed_commands (command_id, booking_id, kind)
             SELECT * FROM unnest($8::uuid[], $9::uuid[], $10::text[]))
         SELECT pg_notify($11, b::text) FROM (SELECT DISTINCT unnest($3::uuid[]) AS b) AS d",
    )
    .bind(&event_ids)
    .bind(&event_commands)
    .bind(&bookings)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&actors)
    .bind(now)
    .bind(&commands)
    .bind(&command_bookings)
    .bind(&command_kinds)
    .bind(store::DECIDED_CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The Avro symbol of an event kind (`NO_SHOW`), as consumers of the topic read it.
fn symbol(kind: BookingEventKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(symbol)) => symbol,
        other => unreachable!("an enum variant serializes as its symbol, got {other:?}"),
    }
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
        Action::Cancel(_) | Action::MarkAttendance(_) => vec![],
    };
    let events = into_events(command, drafts, now);
    record(&mut tx, &[(command, events.as_slice())], now).await?;
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
    let mut conn = pool.acquire().await?;
    let mut events = events_of(&mut conn, &[command_id]).await?;
    Ok(events.remove(&command_id).unwrap_or_default())
}

/// The events recorded for processed commands, each command's in the order they were decided.
async fn events_of(
    conn: &mut PgConnection,
    command_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<BookingEvent>>, ProcessError> {
    let rows = sqlx::query(
        "SELECT command_id, payload FROM booking_events WHERE command_id = ANY($1) ORDER BY seq",
    )
    .bind(command_ids)
    .fetch_all(conn)
    .await?;
    let mut events: HashMap<Uuid, Vec<BookingEvent>> = HashMap::new();
    for row in rows {
        let payload: sqlx::types::Json<BookingEvent> = row.try_get("payload")?;
        events
            .entry(row.try_get("command_id")?)
            .or_default()
            .push(payload.0);
    }
    Ok(events)
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
    service_id: Option<Uuid>,
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
            service_id: self.service_id.map(|id| id.to_string()),
            waitlist_offer_id: None,
            waitlist_entry_id: None,
            hold_until: None,
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
            service_id: create.service_id,
        }
    }
}

/// What the database says about a new appointment's doctor, center, patient and service.
#[derive(Debug, Clone, Default)]
struct Facts {
    doctor_active: Option<bool>,
    center_active: Option<bool>,
    patient_status: Option<String>,
    /// `None` when the request named no service; `Some(None)` when it named an unknown one.
    service: Option<Option<ServiceFacts>>,
    /// Whether a confirmed appointment's occupied time meets this one's.
    taken: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct ServiceFacts {
    active: bool,
    offered: bool,
}

/// A time a confirmed appointment keeps its doctor busy, `[from, until)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// The buffers of a service, in minutes (zero without one).
#[derive(Debug, Clone, Copy, Default)]
struct Buffers {
    before: i64,
    after: i64,
}

impl Buffers {
    fn occupied(self, slot: &crate::command::Slot) -> Span {
        (
            slot.starts_at - chrono::Duration::minutes(self.before),
            slot.ends_at + chrono::Duration::minutes(self.after),
        )
    }
}

/// What the rules' query answers about one create.
struct Lookup {
    facts: Facts,
    buffers: Buffers,
    /// The center's time zone (UTC for an unknown center).
    tz: chrono_tz::Tz,
    /// Whether the doctor has working hours at all.
    on_agenda: bool,
}

impl Lookup {
    fn read(row: &PgRow, create: &Create) -> Result<Self, sqlx::Error> {
        let service_active: Option<bool> = row.try_get("service_active")?;
        let facts = Facts {
            doctor_active: row.try_get("doctor_active")?,
            center_active: row.try_get("center_active")?,
            patient_status: row.try_get("patient_status")?,
            service: create.service_id.map(|_| {
                service_active.map(|active| ServiceFacts {
                    active,
                    offered: row
                        .try_get::<Option<bool>, _>("service_offered")
                        .ok()
                        .flatten()
                        == Some(true),
                })
            }),
            taken: row.try_get("taken")?,
        };
        let timezone: Option<String> = row.try_get("timezone")?;
        Ok(Self {
            facts,
            buffers: Buffers {
                before: row.try_get("buffer_before")?,
                after: row.try_get("buffer_after")?,
            },
            tz: timezone
                .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
                .unwrap_or(chrono_tz::UTC),
            on_agenda: row.try_get("on_agenda")?,
        })
    }
}

/// The rules' verdicts on creates, in order, in few statements: one reads the facts of every
/// rule for all of them, one loads the agendas of their doctors that have one. A create is
/// `slot_taken` too when an earlier confirmation among them (of a booking still open) occupies
/// its time. Each verdict says whether its booking is still open to a decision (not decided by
/// something else meanwhile), and the time a confirmation occupies or the rejection.
async fn check_creates(
    conn: &mut PgConnection,
    rules: Rules,
    creates: &[&Create],
    now: DateTime<Utc>,
) -> Result<Vec<(bool, Result<Buffers, Rejection>)>, ProcessError> {
    let column = |f: fn(&Create) -> Uuid| creates.iter().map(|c| f(c)).collect::<Vec<_>>();
    let rows = sqlx::query(
        // Scalar subqueries, not joins: each is an index lookup whatever the planner guesses
        // of the arrays' length (a prepared statement's generic plan guesses 100 rows, and
        // would hash whole tables).
        "SELECT (SELECT active FROM doctors WHERE id = r.doctor) AS doctor_active,
                (SELECT active FROM centers WHERE id = r.center) AS center_active,
                (SELECT timezone FROM centers WHERE id = r.center) AS timezone,
                (SELECT status FROM patients WHERE id = r.patient) AS patient_status,
                EXISTS (SELECT 1 FROM working_hours w WHERE w.doctor_id = r.doctor) AS on_agenda,
                (SELECT active FROM services WHERE id = r.service) AS service_active,
                EXISTS (SELECT 1 FROM doctor_services ds
                         WHERE ds.doctor_id = r.doctor AND ds.service_id = r.service)
                    AS service_offered,
                b.before AS buffer_before, b.after AS buffer_after,
                EXISTS (SELECT 1 FROM appointments a
                         WHERE a.doctor_id = r.doctor AND a.status = 'confirmed'
                           AND a.id <> r.booking
                           AND tstzrange(coalesce(a.occupied_from, a.starts_at),
                                         coalesce(a.occupied_until, a.ends_at), '[)')
                            && tstzrange(r.starts - make_interval(mins => b.before::int),
                                         r.ends + make_interval(mins => b.after::int), '[)'))
                    AS taken,
                (SELECT x.status = 'pending'
                        OR (x.status = 'rejected' AND x.reason_code = 'retries_exhausted')
                   FROM appointments x WHERE x.id = r.booking) AS open
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                       $6::timestamptz[], $7::timestamptz[]) WITH ORDINALITY
                AS r(doctor, center, patient, booking, service, starts, ends, n),
                LATERAL (SELECT coalesce((SELECT buffer_before_minutes FROM services
                                           WHERE id = r.service), 0)::int8 AS before,
                                coalesce((SELECT buffer_after_minutes FROM services
                                           WHERE id = r.service), 0)::int8 AS after) AS b
          ORDER BY r.n",
    )
    .bind(column(|c| c.doctor_id))
    .bind(column(|c| c.center_id))
    .bind(column(|c| c.patient_id))
    .bind(column(|c| c.booking_id))
    .bind(creates.iter().map(|c| c.service_id).collect::<Vec<_>>())
    .bind(creates.iter().map(|c| c.slot.starts_at).collect::<Vec<_>>())
    .bind(creates.iter().map(|c| c.slot.ends_at).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let mut lookups = Vec::with_capacity(creates.len());
    for (row, create) in rows.iter().zip(creates) {
        // Not open: decided by something else already (e.g. cancelled while its command
        // waited); no row yet is open.
        let open: Option<bool> = row.try_get("open")?;
        lookups.push((open != Some(false), Lookup::read(row, create)?));
    }

    // The agendas of the doctors that have one, around every visit of the run.
    let mut on_agenda = Vec::new();
    let (mut from, mut to) = (None::<chrono::NaiveDate>, None::<chrono::NaiveDate>);
    for ((_, lookup), create) in lookups.iter().zip(creates) {
        if !lookup.on_agenda {
            continue;
        }
        on_agenda.push(create.doctor_id);
        let first =
            agenda::local_date(lookup.tz, create.slot.starts_at) - chrono::Duration::days(1);
        let last = agenda::local_date(lookup.tz, create.slot.ends_at) + chrono::Duration::days(1);
        from = Some(from.map_or(first, |f| f.min(first)));
        to = Some(to.map_or(last, |t| t.max(last)));
    }
    on_agenda.sort_unstable();
    on_agenda.dedup();
    let agendas = match (from, to) {
        (Some(from), Some(to)) => agenda::load(&mut *conn, &on_agenda, from, to).await?,
        _ => HashMap::new(),
    };

    // The verdicts, in order; confirmations of open bookings occupy their time for those
    // after.
    let mut occupied: HashMap<Uuid, Vec<Span>> = HashMap::new();
    let mut verdicts = Vec::with_capacity(creates.len());
    for ((open, lookup), create) in lookups.iter().zip(creates) {
        let span = lookup.buffers.occupied(&create.slot);
        let taken_here = occupied
            .get(&create.doctor_id)
            .is_some_and(|spans| spans.iter().any(|s| s.0 < span.1 && span.0 < s.1));
        let visit = agenda::Interval::new(create.slot.starts_at, create.slot.ends_at);
        let agenda_verdict = || {
            agendas
                .get(&create.doctor_id)
                .map(|a| a.check(create.center_id, lookup.tz, visit))
                .unwrap_or(agenda::Verdict::NoAgenda)
        };
        let rejection = judge(rules, create, now, &lookup.facts)
            .or_else(|| agenda_rejection(agenda_verdict()))
            .or_else(|| (lookup.facts.taken || taken_here).then(slot_taken));
        match rejection {
            Some(rejection) => verdicts.push((*open, Err(rejection))),
            None => {
                if *open {
                    occupied.entry(create.doctor_id).or_default().push(span);
                }
                verdicts.push((*open, Ok(lookup.buffers)));
            }
        }
    }
    Ok(verdicts)
}

/// Decides a run of creates of one batch together: their verdicts ([`check_creates`]), then
/// one statement writes every outcome and one schedules the reminders of the confirmed.
/// Answers each create's drafts, in order (none for a booking no longer open).
async fn decide_creates(
    conn: &mut PgConnection,
    rules: Rules,
    run: &[(&Command, &Create)],
    now: DateTime<Utc>,
) -> Result<Vec<Vec<Draft>>, ProcessError> {
    let creates: Vec<&Create> = run.iter().map(|(_, c)| *c).collect();
    let verdicts: Vec<Option<Result<Buffers, Rejection>>> =
        check_creates(conn, rules, &creates, now)
            .await?
            .into_iter()
            .map(|(open, outcome)| open.then_some(outcome))
            .collect();

    let mut decisions = Vec::with_capacity(run.len());
    let mut confirmed = Vec::new();
    for (verdict, (command, create)) in verdicts.iter().zip(run) {
        let outcome = match verdict {
            None => continue,
            Some(Ok(buffers)) => {
                let (occupied_from, occupied_until) = buffers.occupied(&create.slot);
                confirmed.push((create.booking_id, create.center_id, create.slot.starts_at));
                Outcome::Confirmed {
                    occupied_from,
                    occupied_until,
                }
            }
            Some(Err(r)) => Outcome::Rejected {
                code: r.code,
                message: &r.message,
            },
        };
        decisions.push((create.appointment(command), outcome));
    }
    let written = store::write_decided_many(&mut *conn, &decisions, now).await?;
    if written != decisions.len() as u64 {
        // Only a writer outside the doctors' locks could have changed them since the read.
        return Err(ProcessError::Transient(anyhow::anyhow!(
            "{} of {} bookings changed while their batch was decided",
            decisions.len() as u64 - written,
            decisions.len()
        )));
    }
    store::reminders::schedule_many(&mut *conn, &confirmed, rules.reminders.as_slice(), now)
        .await?;

    Ok(verdicts
        .into_iter()
        .zip(run)
        .map(|(verdict, (_, create))| match verdict {
            None => vec![],
            Some(Ok(_)) => vec![Draft::for_create(
                create,
                BookingEventKind::Confirmed,
                BookingStatus::Confirmed,
                None,
            )],
            Some(Err(rejection)) => vec![Draft::for_create(
                create,
                BookingEventKind::Rejected,
                BookingStatus::Rejected,
                Some(rejection),
            )],
        })
        .collect())
}

/// The rules every new appointment must pass, checked against the database in the deciding
/// transaction (see [`check_creates`]). Answers the buffers a confirmation occupies.
async fn check_rules(
    conn: &mut PgConnection,
    rules: Rules,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<(Option<Rejection>, Buffers), ProcessError> {
    let verdict = check_creates(conn, rules, &[create], now).await?.pop();
    Ok(match verdict.map(|(_, outcome)| outcome) {
        Some(Ok(buffers)) => (None, buffers),
        Some(Err(rejection)) => (Some(rejection), Buffers::default()),
        None => unreachable!("one verdict per create"),
    })
}

/// The agenda's verdict as a final rejection, if it is one.
fn agenda_rejection(verdict: agenda::Verdict) -> Option<Rejection> {
    match verdict {
        agenda::Verdict::Open | agenda::Verdict::NoAgenda => None,
        agenda::Verdict::NotAtCenter => Some(Rejection::new(
            "doctor_not_at_center",
            "The doctor does not work at that center.",
        )),
        agenda::Verdict::Outside => Some(Rejection::new(
            "outside_working_hours",
            "The requested time is outside the doctor's working hours at that center.",
        )),
        agenda::Verdict::TimeOff => Some(Rejection::new(
            "doctor_time_off",
            "The doctor is not available at the requested time.",
        )),
    }
}

/// The verdict on the directory, the service and the time, in the order a clinic would
/// explain it (the agenda and the overlap come after).
fn judge(rules: Rules, create: &Create, now: DateTime<Utc>, facts: &Facts) -> Option<Rejection> {
    let minutes = create.slot.duration_minutes();
    match (
        facts.doctor_active,
        facts.center_active,
        facts.patient_status.as_deref(),
    ) {
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
        _ if matches!(facts.service, Some(None)) => Some(Rejection::new(
            "service_not_found",
            "The service does not exist.",
        )),
        _ if matches!(facts.service, Some(Some(s)) if !s.active) => Some(Rejection::new(
            "service_inactive",
            "The service is no longer offered.",
        )),
        _ if matches!(facts.service, Some(Some(s)) if !s.offered) => Some(Rejection::new(
            "service_not_offered",
            "The doctor does not offer that service.",
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
    write_decision(conn, command, create, rejection, Buffers::default(), now).await
}

/// Writes the decided state of a new booking, a confirmation occupying its buffers too.
async fn write_decision(
    conn: &mut PgConnection,
    command: &Command,
    create: &Create,
    rejection: Option<&Rejection>,
    buffers: Buffers,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (occupied_from, occupied_until) = buffers.occupied(&create.slot);
    let outcome = match rejection {
        None => Outcome::Confirmed {
            occupied_from,
            occupied_until,
        },
        Some(r) => Outcome::Rejected {
            code: r.code,
            message: &r.message,
        },
    };
    store::write_decided(conn, &create.appointment(command), outcome, now).await
}

/// Writes the reminders of a booking just confirmed, in the same transaction (see
/// `booking-store/src/reminders.rs`).
async fn schedule_reminders(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let booking = create.appointment(command);
    store::reminders::schedule(
        conn,
        booking.id,
        booking.center_id,
        booking.starts_at,
        rules.reminders.as_slice(),
        now,
    )
    .await?;
    Ok(())
}

/// Confirms the booking if every rule passes; the exclusion constraint has the final word.
/// With [`Guard::Savepoint`] the write runs inside a savepoint, so a constraint violation
/// leaves the transaction usable and becomes a `slot_taken` rejection.
async fn try_confirm(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
    guard: Guard,
) -> Result<(Option<Rejection>, bool), ProcessError> {
    let (rejection, buffers) = check_rules(conn, rules, create, now).await?;
    if rejection.is_some() {
        return Ok((rejection, false));
    }
    if guard == Guard::Batch {
        let written = write_decision(conn, command, create, None, buffers, now).await?;
        return Ok((None, written));
    }
    sqlx::query("SAVEPOINT confirm").execute(&mut *conn).await?;
    match write_decision(conn, command, create, None, buffers, now).await {
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
    guard: Guard,
) -> Result<Vec<Draft>, ProcessError> {
    let (rejection, confirmed) = try_confirm(conn, rules, command, create, now, guard).await?;
    if rejection.is_none() && confirmed {
        schedule_reminders(conn, rules, command, create, now).await?;
    }
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
        service_id: existing.service_id,
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
    store::reminders::drop_pending(conn, cancel.booking_id, "cancelled").await?;
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

/// Records whether the patient came: only on a confirmed booking whose start has passed when
/// the command is decided (the API checks the same first; a cancel decided in between wins),
/// and only if it changes something (marking the same outcome twice announces nothing).
async fn decide_attendance(
    conn: &mut PgConnection,
    mark: &Mark,
    now: DateTime<Utc>,
) -> Result<Vec<Draft>, ProcessError> {
    let Some(existing) = store::lock_existing(conn, mark.booking_id).await? else {
        return Ok(vec![]);
    };
    if existing.status != "confirmed"
        || existing.starts_at > now
        || existing.attendance == Some(mark.attendance)
        || !store::mark_attendance(conn, mark.booking_id, mark.attendance, now).await?
    {
        return Ok(vec![]);
    }
    Ok(vec![Draft {
        kind: match mark.attendance {
            Attendance::Attended => BookingEventKind::Attended,
            Attendance::NoShow => BookingEventKind::NoShow,
        },
        status: BookingStatus::Confirmed,
        booking_id: mark.booking_id,
        doctor_id: existing.doctor_id,
        patient_id: existing.patient_id,
        center_id: existing.center_id,
        starts_at: existing.starts_at,
        ends_at: existing.ends_at,
        rejection: None,
        previous_booking_id: None,
        service_id: existing.service_id,
    }])
}

/// Confirms the new slot and cancels the old booking in one decision; if the new slot cannot
/// be confirmed, the old booking stays as it was.
async fn decide_reschedule(
    conn: &mut PgConnection,
    rules: Rules,
    command: &Command,
    create: &Create,
    now: DateTime<Utc>,
    guard: Guard,
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
    let (rejection, confirmed) = try_confirm(conn, rules, command, create, now, guard).await?;
    match rejection {
        None if confirmed => {
            sqlx::query("RELEASE SAVEPOINT reschedule")
                .execute(&mut *conn)
                .await?;
            // The old booking's reminders stop; the new one gets its own.
            store::reminders::drop_pending(conn, previous_id, "moved").await?;
            schedule_reminders(conn, rules, command, create, now).await?;
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
            service_id: None,
        }
    }

    const RULES: Rules = Rules {
        min_duration_minutes: 5,
        max_duration_minutes: 480,
        reminders: ReminderOffsets {
            minutes: [0; 10],
            len: 0,
        },
    };

    fn code(r: Option<Rejection>) -> &'static str {
        r.map(|r| r.code).unwrap_or("ok")
    }

    fn facts(doctor: Option<bool>, center: Option<bool>, patient: Option<&str>) -> Facts {
        Facts {
            doctor_active: doctor,
            center_active: center,
            patient_status: patient.map(str::to_owned),
            ..Facts::default()
        }
    }

    #[test]
    fn rules_are_explained_in_order() {
        let c = create(60, 30);
        let now = Utc::now();
        let verdict = |f: Facts| code(judge(RULES, &c, now, &f));
        assert_eq!(verdict(facts(None, None, None)), "doctor_not_found");
        assert_eq!(
            verdict(facts(Some(false), Some(true), Some("ACTIVE"))),
            "doctor_inactive"
        );
        assert_eq!(
            verdict(facts(Some(true), None, Some("ACTIVE"))),
            "center_not_found"
        );
        assert_eq!(
            verdict(facts(Some(true), Some(false), Some("ACTIVE"))),
            "center_inactive"
        );
        assert_eq!(
            verdict(facts(Some(true), Some(true), None)),
            "patient_not_found"
        );
        assert_eq!(
            verdict(facts(Some(true), Some(true), Some("INACTIVE"))),
            "patient_inactive"
        );
        let with_service = |service| Facts {
            service: Some(service),
            ..facts(Some(true), Some(true), Some("ACTIVE"))
        };
        assert_eq!(verdict(with_service(None)), "service_not_found");
        let service = |active, offered| Some(ServiceFacts { active, offered });
        assert_eq!(
            verdict(with_service(service(false, true))),
            "service_inactive"
        );
        assert_eq!(
            verdict(with_service(service(true, false))),
            "service_not_offered"
        );
        assert_eq!(verdict(with_service(service(true, true))), "ok");
        assert_eq!(verdict(facts(Some(true), Some(true), Some("ACTIVE"))), "ok");
    }

    #[test]
    fn the_agenda_explains_its_rejections() {
        use agenda::Verdict::*;
        let codes: Vec<&str> = [Open, NoAgenda, NotAtCenter, Outside, TimeOff]
            .into_iter()
            .map(|v| code(agenda_rejection(v)))
            .collect();
        assert_eq!(
            codes,
            [
                "ok",
                "ok",
                "doctor_not_at_center",
                "outside_working_hours",
                "doctor_time_off"
            ]
        );
    }

    #[test]
    fn time_rules() {
        let now = Utc::now();
        let all_good = |c: &Create| {
            judge(
                RULES,
                c,
                now,
                &facts(Some(true), Some(true), Some("ACTIVE")),
            )
        };
        assert_eq!(code(all_good(&create(-5, 30))), "slot_in_past");
        assert_eq!(code(all_good(&create(60, 4))), "invalid_duration");
        assert_eq!(code(all_good(&create(60, 481))), "invalid_duration");
        assert_eq!(code(all_good(&create(60, 480))), "ok");
    }
}
