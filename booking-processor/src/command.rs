//! Typed commands parsed from their Avro records: a record that does not parse is a permanent
//! failure (dead letter), never a panic.

use chrono::{DateTime, Utc};
use citaflow_booking_store::{Attendance, NewAppointment};
use citaflow_schemas::{BookingCommand, BookingCommandKind};
use uuid::Uuid;

use crate::error::ProcessError;

/// A slot in a doctor's agenda, `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Slot {
    pub fn duration_minutes(&self) -> i64 {
        (self.ends_at - self.starts_at).num_minutes()
    }
}

/// Book `slot` with `doctor_id` for `patient_id` at `center_id`.
#[derive(Debug, Clone)]
pub struct Create {
    pub booking_id: Uuid,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub slot: Slot,
    pub reason: Option<String>,
    /// Set when this create is the new half of a reschedule.
    pub previous_booking_id: Option<Uuid>,
    /// The kind of visit, when the request named one (older commands never do).
    pub service_id: Option<Uuid>,
}

impl Create {
    /// The appointment row this create asks for, as `command` requested it.
    pub fn appointment<'a>(&'a self, command: &Command) -> NewAppointment<'a> {
        NewAppointment {
            id: self.booking_id,
            command_id: command.command_id,
            doctor_id: self.doctor_id,
            patient_id: self.patient_id,
            center_id: self.center_id,
            starts_at: self.slot.starts_at,
            ends_at: self.slot.ends_at,
            reason: self.reason.as_deref(),
            previous_booking_id: self.previous_booking_id,
            requested_by: command.requested_by,
            requested_at: command.requested_at,
            service_id: self.service_id,
        }
    }
}

/// Cancel `booking_id`.
#[derive(Debug, Clone)]
pub struct Cancel {
    pub booking_id: Uuid,
    pub doctor_id: Uuid,
}

/// Record whether the patient came to `booking_id`.
#[derive(Debug, Clone)]
pub struct Mark {
    pub booking_id: Uuid,
    pub doctor_id: Uuid,
    pub attendance: Attendance,
}

#[derive(Debug, Clone)]
pub enum Action {
    Create(Create),
    Cancel(Cancel),
    /// Close `booking_id` if it is still pending when this is decided: its request never
    /// reached the processor (the API died between the pending row and the produce). Being on
    /// the doctor's partition, it is decided after anything produced for that doctor before it.
    Expire(Cancel),
    /// Confirm the new booking, then cancel the previous one, in one decision.
    Reschedule(Create),
    /// Record the attendance of a confirmed booking that has started.
    MarkAttendance(Mark),
}

/// A parsed command with its envelope.
#[derive(Debug, Clone)]
pub struct Command {
    pub command_id: Uuid,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub action: Action,
}

impl Command {
    pub fn booking_id(&self) -> Uuid {
        match &self.action {
            Action::Create(c) | Action::Reschedule(c) => c.booking_id,
            Action::Cancel(c) | Action::Expire(c) => c.booking_id,
            Action::MarkAttendance(m) => m.booking_id,
        }
    }

    /// The doctor whose agenda this command changes (its partition key).
    pub fn doctor_id(&self) -> Uuid {
        match &self.action {
            Action::Create(c) | Action::Reschedule(c) => c.doctor_id,
            Action::Cancel(c) | Action::Expire(c) => c.doctor_id,
            Action::MarkAttendance(m) => m.doctor_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.action {
            Action::Create(_) => "create",
            Action::Cancel(_) => "cancel",
            Action::Reschedule(_) => "reschedule",
            Action::Expire(_) => "expire",
            Action::MarkAttendance(_) => "attendance",
        }
    }
}

fn uuid(field: &str, value: &str) -> Result<Uuid, ProcessError> {
    Uuid::parse_str(value).map_err(|_| ProcessError::permanent(format!("{field} is not a UUID")))
}

fn required<'a, T>(field: &str, value: &'a Option<T>) -> Result<&'a T, ProcessError> {
    value
        .as_ref()
        .ok_or_else(|| ProcessError::permanent(format!("{field} is missing")))
}

fn time(field: &str, millis: i64) -> Result<DateTime<Utc>, ProcessError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| ProcessError::permanent(format!("{field} is out of range")))
}

impl TryFrom<&BookingCommand> for Command {
    type Error = ProcessError;

    fn try_from(record: &BookingCommand) -> Result<Self, Self::Error> {
        let command_id = uuid("command_id", &record.command_id)?;
        let booking_id = uuid("booking_id", &record.booking_id)?;
        let doctor_id = uuid("doctor_id", &record.doctor_id)?;
        let requested_by = record
            .requested_by
            .as_deref()
            .map(|v| uuid("requested_by", v))
            .transpose()?;
        let requested_at = time("requested_at", record.requested_at)?;
        let create = |previous_booking_id: Option<Uuid>| -> Result<Create, ProcessError> {
            let slot = Slot {
                starts_at: time("starts_at", *required("starts_at", &record.starts_at)?)?,
                ends_at: time("ends_at", *required("ends_at", &record.ends_at)?)?,
            };
            if slot.ends_at <= slot.starts_at {
                return Err(ProcessError::permanent("ends_at is not after starts_at"));
            }
            Ok(Create {
                booking_id,
                doctor_id,
                patient_id: uuid("patient_id", required("patient_id", &record.patient_id)?)?,
                center_id: uuid("center_id", required("center_id", &record.center_id)?)?,
                slot,
                reason: record.reason.clone(),
                previous_booking_id,
                service_id: record
                    .service_id
                    .as_deref()
                    .map(|v| uuid("service_id", v))
                    .transpose()?,
            })
        };
        let action = match record.kind {
            BookingCommandKind::Create => Action::Create(create(None)?),
            BookingCommandKind::Cancel => Action::Cancel(Cancel {
                booking_id,
                doctor_id,
            }),
            BookingCommandKind::Expire => Action::Expire(Cancel {
                booking_id,
                doctor_id,
            }),
            BookingCommandKind::Reschedule => {
                let previous = uuid(
                    "previous_booking_id",
                    required("previous_booking_id", &record.previous_booking_id)?,
                )?;
                Action::Reschedule(create(Some(previous))?)
            }
            BookingCommandKind::MarkAttended | BookingCommandKind::MarkNoShow => {
                Action::MarkAttendance(Mark {
                    booking_id,
                    doctor_id,
                    attendance: if record.kind == BookingCommandKind::MarkAttended {
                        Attendance::Attended
                    } else {
                        Attendance::NoShow
                    },
                })
            }
        };
        Ok(Command {
            command_id,
            requested_by,
            requested_at,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> BookingCommand {
        BookingCommand {
            command_id: Uuid::new_v4().to_string(),
            kind: BookingCommandKind::Create,
            booking_id: Uuid::new_v4().to_string(),
            doctor_id: Uuid::new_v4().to_string(),
            patient_id: Some(Uuid::new_v4().to_string()),
            center_id: Some(Uuid::new_v4().to_string()),
            starts_at: Some(1_900_000_000_000),
            ends_at: Some(1_900_001_800_000),
            reason: None,
            previous_booking_id: None,
            requested_by: None,
            requested_at: 1_899_000_000_000,
            service_id: None,
        }
    }

    #[test]
    fn a_create_parses_with_its_slot() {
        let c = Command::try_from(&record()).unwrap();
        let Action::Create(create) = c.action else {
            panic!("not a create")
        };
        assert_eq!(create.slot.duration_minutes(), 30);
    }

    #[test]
    fn broken_records_are_permanent_failures() {
        let mut r = record();
        r.doctor_id = "not-a-uuid".into();
        assert!(!Command::try_from(&r).unwrap_err().is_transient());

        let mut r = record();
        r.starts_at = None;
        assert!(!Command::try_from(&r).unwrap_err().is_transient());

        let mut r = record();
        r.ends_at = r.starts_at;
        assert!(!Command::try_from(&r).unwrap_err().is_transient());

        let mut r = record();
        r.kind = BookingCommandKind::Reschedule;
        assert!(
            Command::try_from(&r).is_err(),
            "a reschedule needs previous_booking_id"
        );
    }

    #[test]
    fn an_attendance_mark_needs_only_the_booking_and_its_doctor() {
        for (kind, attendance) in [
            (BookingCommandKind::MarkAttended, Attendance::Attended),
            (BookingCommandKind::MarkNoShow, Attendance::NoShow),
        ] {
            let mut r = record();
            r.kind = kind;
            r.starts_at = None;
            r.ends_at = None;
            r.patient_id = None;
            r.center_id = None;
            let c = Command::try_from(&r).unwrap();
            assert_eq!(c.kind(), "attendance");
            let Action::MarkAttendance(mark) = c.action else {
                panic!("not a mark")
            };
            assert_eq!(mark.attendance, attendance);
            assert_eq!(mark.booking_id.to_string(), r.booking_id);
        }
    }

    #[test]
    fn a_cancel_needs_no_slot() {
        let mut r = record();
        r.kind = BookingCommandKind::Cancel;
        r.starts_at = None;
        r.ends_at = None;
        r.patient_id = None;
        r.center_id = None;
        assert!(matches!(
            Command::try_from(&r).unwrap().action,
            Action::Cancel(_)
        ));
    }
}
