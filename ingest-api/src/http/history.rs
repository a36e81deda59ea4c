//! `GET /bookings/{id}/history`: every change of an appointment, in order, with who made it.
//!
//! An appointment is followed across its moves: a reschedule makes a new booking that names
//! the old one (`previous_booking_id`), so the history of any booking of the chain is the
//! history of the whole visit (the requests, decisions, moves, cancellation and attendance of
//! every booking in it, each entry naming its booking). It is read from what the platform
//! already keeps: the appointment rows (who requested each booking, and when) and the events
//! booking-processor recorded in the deciding transaction (`booking_events`, with the actor:
//! the user who sent the command and their role). Nothing is written for it.
//!
//! Who sees what: the booking asked for follows the rules of `GET /bookings/{id}` (404
//! otherwise); of the chain, only the bookings the caller may read are shown (a doctor sees
//! the part of a visit moved between doctors that was on their agenda, plus the move itself),
//! and only bookings of the same patient are part of it. Actors are ids and roles, never
//! names.

use std::collections::HashSet;

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use citaflow_schemas::{BookingEvent, BookingEventKind, BookingStatus};
use serde::Serialize;
use sqlx::{FromRow, types::Json as Jsonb};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::AuthUser,
    bookings,
    error::{ApiError, AppPath, ErrorBody},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(booking_history))
}

/// The history of the appointment a booking belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// The booking asked for.
    pub booking_id: Uuid,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The booking was requested (a move's new booking names the old one in
    /// `from_booking_id`).
    Requested,
    Confirmed,
    /// Not confirmed; `reason_code` says why.
    Rejected,
    /// `reason_code` `cancelled_by_request` (a person cancelled it).
    Cancelled,
    /// Moved from `from_booking_id` to `to_booking_id` (the old booking is cancelled and the
    /// new one confirmed in the same decision).
    Moved,
    Attended,
    NoShow,
    /// The patient was sent a reminder (by email and SMS); `reason_code` names the offset
    /// (`reminder_1440m`). No actor: the platform sends it.
    Reminded,
}

/// Who made a change: the user who sent the request, with their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Actor {
    pub user_id: Uuid,
    /// `admin`, `secretary`, `doctor` or `patient`.
    pub role: Option<String>,
}

/// One change of the appointment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub action: Action,
    /// The booking it happened to (for a move, the new booking).
    pub booking_id: Uuid,
    /// Status of that booking after it: `pending`, `confirmed`, `rejected` or `cancelled`.
    pub status: String,
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    /// A move's old booking (also on the request of the new one).
    pub from_booking_id: Option<Uuid>,
    /// A move's new booking.
    pub to_booking_id: Option<Uuid>,
    /// Null when the platform itself made the change (a request that never reached the
    /// processor, closed `not_accepted`) or when it was recorded before actors were kept.
    pub actor: Option<Actor>,
}

/// A booking of the chain.
#[derive(Debug, FromRow)]
struct Link {
    id: Uuid,
    status: String,
    doctor_id: Uuid,
    patient_id: Uuid,
    previous_booking_id: Option<Uuid>,
    requested_at: DateTime<Utc>,
    requested_by: Option<Uuid>,
    requested_by_role: Option<String>,
    reason_code: Option<String>,
    reason_message: Option<String>,
    decided_at: Option<DateTime<Utc>>,
}

/// An event recorded by the processor.
#[derive(Debug, FromRow)]
struct Recorded {
    seq: i64,
    command_id: Uuid,
    payload: Jsonb<BookingEvent>,
    actor_id: Option<Uuid>,
    actor_role: Option<String>,
}

/// The bookings linked to `$1` by moves (up its `previous_booking_id`s to the first, then down
/// every move from there), of the same patient. Bounded, so a cycle could never loop.
const CHAIN: &str = "
WITH RECURSIVE up (id, previous_booking_id, depth) AS (
        SELECT id, previous_booking_id, 0 FROM appointments WHERE id = $1
    UNION ALL
        SELECT a.id, a.previous_booking_id, up.depth + 1
          FROM appointments a JOIN up ON a.id = up.previous_booking_id
         WHERE up.depth < 100
), root AS (SELECT id FROM up ORDER BY depth DESC LIMIT 1),
down (id, depth) AS (
        SELECT id, 0 FROM root
    UNION ALL
        SELECT a.id, down.depth + 1
          FROM appointments a JOIN down ON a.previous_booking_id = down.id
         WHERE down.depth < 100
)
SELECT a.id, a.status, a.doctor_id, a.patient_id, a.previous_booking_id, a.requested_at,
       a.requested_by, u.role AS requested_by_role, a.reason_code, a.reason_message,
       a.decided_at
  FROM appointments a LEFT JOIN users u ON u.id = a.requested_by
 WHERE a.id IN (SELECT id FROM down)
   AND a.patient_id = (SELECT patient_id FROM appointments WHERE id = $1)";

/// The history of the appointment booking `id` belongs to: its requests, confirmations and
/// rejections (with the reason), moves (from and to), cancellation and attendance, oldest
/// first, each with when and by whom (user id and role). Follows the booking across its moves,
/// so every booking of the visit answers the same story. Same access as `GET /bookings/{id}`:
/// staff any booking, a doctor their own agenda, a patient their own (else 404).
#[utoipa::path(get, path = "/bookings/{id}/history", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = History),
        (status = 404, description = "No such booking, or not the caller's", body = ErrorBody)))]
async fn booking_history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<History>, ApiError> {
    bookings::load(&state, id)
        .await?
        .filter(|b| bookings::visible_to(&user, b))
        .ok_or(ApiError::NotFound("booking"))?;
    let chain: Vec<Link> = sqlx::query_as(CHAIN)
        .bind(id)
        .fetch_all(&state.pool)
        .await?;
    let ids: Vec<Uuid> = chain.iter().map(|l| l.id).collect();
    let events: Vec<Recorded> = sqlx::query_as(
        "SELECT seq, command_id, payload, actor_id, actor_role
           FROM booking_events WHERE booking_id = ANY($1) ORDER BY seq",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    let visible: HashSet<Uuid> = chain
        .iter()
        .filter(|l| bookings::may_see(&user, l.doctor_id, l.patient_id))
        .map(|l| l.id)
        .collect();
    Ok(Json(History {
        booking_id: id,
        entries: entries(&chain, &events, &visible),
    }))
}

fn status_name(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::Pending => "pending",
        BookingStatus::Confirmed => "confirmed",
        BookingStatus::Rejected => "rejected",
        BookingStatus::Cancelled => "cancelled",
    }
}

fn uuid(value: &str) -> Option<Uuid> {
    Uuid::parse_str(value).ok()
}

/// The entries of a chain, oldest first, keeping those about a booking in `visible` (a move
/// when either of its bookings is).
fn entries(chain: &[Link], events: &[Recorded], visible: &HashSet<Uuid>) -> Vec<HistoryEntry> {
    // (time, order among equal times, entry): a request before its booking's events, events
    // in the order they were recorded.
    let mut out: Vec<(DateTime<Utc>, i64, HistoryEntry)> = Vec::new();
    for link in chain.iter().filter(|l| visible.contains(&l.id)) {
        out.push((
            link.requested_at,
            -1,
            HistoryEntry {
                at: link.requested_at,
                action: Action::Requested,
                booking_id: link.id,
                status: "pending".into(),
                reason_code: None,
                reason_message: None,
                from_booking_id: link.previous_booking_id,
                to_booking_id: None,
                actor: link.requested_by.map(|user_id| Actor {
                    user_id,
                    role: link.requested_by_role.clone(),
                }),
            },
        ));
        // A booking decided without an event (its request never reached Kafka and the API
        // closed it `not_accepted`): the row itself says how it ended.
        let has_events = events
            .iter()
            .any(|e| uuid(&e.payload.booking_id) == Some(link.id));
        if !has_events && link.status != "pending" {
            let action = match link.status.as_str() {
                "confirmed" => Action::Confirmed,
                "cancelled" => Action::Cancelled,
                _ => Action::Rejected,
            };
            let at = link.decided_at.unwrap_or(link.requested_at);
            out.push((
                at,
                0,
                HistoryEntry {
                    at,
                    action,
                    booking_id: link.id,
                    status: link.status.clone(),
                    reason_code: link.reason_code.clone(),
                    reason_message: link.reason_message.clone(),
                    from_booking_id: None,
                    to_booking_id: None,
                    actor: None,
                },
            ));
        }
    }

    // A move is one change: its RESCHEDULED event (on the new booking) stands for the
    // cancellation of the old booking that the same command recorded.
    let moves: HashSet<Uuid> = events
        .iter()
        .filter(|e| e.payload.kind == BookingEventKind::Rescheduled)
        .map(|e| e.command_id)
        .collect();
    for recorded in events {
        let event = &recorded.payload.0;
        let Some(booking_id) = uuid(&event.booking_id) else {
            continue;
        };
        let from = event.previous_booking_id.as_deref().and_then(uuid);
        let (action, from_booking_id, to_booking_id) = match event.kind {
            BookingEventKind::Confirmed => (Action::Confirmed, None, None),
            BookingEventKind::Rejected => (Action::Rejected, None, None),
            BookingEventKind::Cancelled
                if event.reason_code.as_deref() == Some("rescheduled")
                    && moves.contains(&recorded.command_id) =>
            {
                continue;
            }
            BookingEventKind::Cancelled => (Action::Cancelled, None, None),
            BookingEventKind::Rescheduled => (Action::Moved, from, Some(booking_id)),
            BookingEventKind::Attended => (Action::Attended, None, None),
            BookingEventKind::NoShow => (Action::NoShow, None, None),
            BookingEventKind::ReminderDue => (Action::Reminded, None, None),
            // Offers of a freed slot belong to the waitlist, not to the freed booking.
            BookingEventKind::WaitlistOffered | BookingEventKind::WaitlistExpired => continue,
        };
        let shown = visible.contains(&booking_id)
            || (action == Action::Moved && from.is_some_and(|f| visible.contains(&f)));
        if !shown {
            continue;
        }
        let at = DateTime::from_timestamp_millis(event.occurred_at).unwrap_or_default();
        out.push((
            at,
            recorded.seq,
            HistoryEntry {
                at,
                action,
                booking_id,
                status: status_name(event.status).into(),
                reason_code: event.reason_code.clone(),
                reason_message: event.reason_message.clone(),
                from_booking_id,
                to_booking_id,
                actor: recorded.actor_id.map(|user_id| Actor {
                    user_id,
                    role: recorded.actor_role.clone(),
                }),
            },
        ));
    }
    out.sort_by_key(|(at, order, _)| (*at, *order));
    out.into_iter().map(|(_, _, entry)| entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn link(id: Uuid, previous: Option<Uuid>, at: DateTime<Utc>, status: &str) -> Link {
        Link {
            id,
            status: status.into(),
            doctor_id: Uuid::nil(),
            patient_id: Uuid::nil(),
            previous_booking_id: previous,
            requested_at: at,
            requested_by: Some(Uuid::from_u128(7)),
            requested_by_role: Some("patient".into()),
            reason_code: None,
            reason_message: None,
            decided_at: Some(at + Duration::milliseconds(5)),
        }
    }

    fn recorded(
        seq: i64,
        command: Uuid,
        kind: BookingEventKind,
        booking: Uuid,
        previous: Option<Uuid>,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Recorded {
        Recorded {
            seq,
            command_id: command,
            payload: Jsonb(BookingEvent {
                event_id: Uuid::new_v4().to_string(),
                kind,
                booking_id: booking.to_string(),
                command_id: command.to_string(),
                doctor_id: Uuid::nil().to_string(),
                patient_id: Uuid::nil().to_string(),
                center_id: Uuid::nil().to_string(),
                starts_at: 0,
                ends_at: 0,
                status: BookingStatus::Confirmed,
                reason_code: reason.map(str::to_owned),
                reason_message: None,
                previous_booking_id: previous.map(|p| p.to_string()),
                occurred_at: at.timestamp_millis(),
                service_id: None,
                waitlist_offer_id: None,
                waitlist_entry_id: None,
                hold_until: None,
            }),
            actor_id: Some(Uuid::from_u128(9)),
            actor_role: Some("secretary".into()),
        }
    }

    #[test]
    fn a_move_is_one_entry_and_every_step_comes_in_order() {
        let t = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (create, moving, cancel) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let s = |secs| t + Duration::seconds(secs);
        let chain = [
            link(a, None, s(0), "cancelled"),
            link(b, Some(a), s(10), "cancelled"),
        ];
        let events = [
            recorded(1, create, BookingEventKind::Confirmed, a, None, None, s(1)),
            recorded(
                2,
                moving,
                BookingEventKind::Rescheduled,
                b,
                Some(a),
                None,
                s(11),
            ),
            recorded(
                3,
                moving,
                BookingEventKind::Cancelled,
                a,
                None,
                Some("rescheduled"),
                s(11),
            ),
            recorded(
                4,
                cancel,
                BookingEventKind::Cancelled,
                b,
                None,
                Some("cancelled_by_request"),
                s(20),
            ),
        ];
        let all: HashSet<Uuid> = [a, b].into();
        let got: Vec<(Action, Uuid)> = entries(&chain, &events, &all)
            .into_iter()
            .map(|e| (e.action, e.booking_id))
            .collect();
        assert_eq!(
            got,
            [
                (Action::Requested, a),
                (Action::Confirmed, a),
                (Action::Requested, b),
                (Action::Moved, b),
                (Action::Cancelled, b),
            ]
        );
        // Who sees only the old booking still sees the move, but not the new booking's life.
        let old_only: HashSet<Uuid> = [a].into();
        let got: Vec<Action> = entries(&chain, &events, &old_only)
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(got, [Action::Requested, Action::Confirmed, Action::Moved]);
    }

    #[test]
    fn a_booking_closed_without_an_event_says_how_it_ended() {
        let t = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let a = Uuid::from_u128(1);
        let mut closed = link(a, None, t, "rejected");
        closed.reason_code = Some("not_accepted".into());
        let got = entries(&[closed], &[], &[a].into());
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].action, Action::Rejected);
        assert_eq!(got[1].reason_code.as_deref(), Some("not_accepted"));
        assert_eq!(got[1].actor, None);
    }
}
