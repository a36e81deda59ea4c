//! The agenda: when a doctor is open at a center, and what is free there.
//!
//! Working hours and exceptions are written in the center's local terms (a weekday or a date,
//! and minutes since local midnight); this crate turns them into UTC instants with the center's
//! time zone, so daylight saving is the tz database's: a 09:00 start stays 09:00 local on both
//! sides of a change. ingest-api (free-slot search, overlap checks) and booking-processor (the
//! rules of the deciding transaction) use the same functions, so what `/availability` offers
//! is what the processor confirms.
//!
//! - [`Agenda::open`]: the doctor's open intervals at a center over a range of local dates
//!   (weekly hours valid on each date, plus extra openings, minus time off).
//! - [`Agenda::check`]: whether one visit fits, and if not, why ([`Verdict`]).
//! - [`free_slots`]: the starts a service can take, on a grid, outside busy time and notice.
//! - [`weekly_conflict`]: whether two weekly ranges of one doctor ever overlap in time.
//! - [`load`]: one doctor's (or several doctors') hours and exceptions from PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// Minutes in a day: a range may end at 24:00.
pub const DAY_MINUTES: u16 = 1440;

/// A range of local time within one day, in minutes since midnight (`start < end <= 1440`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub start: u16,
    pub end: u16,
}

impl DayRange {
    /// A range, if `start < end <= 1440`.
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start < end && end <= DAY_MINUTES).then_some(Self { start, end })
    }

    /// Parses `"HH:MM"` (`"24:00"` allowed as an end) into minutes since midnight.
    pub fn parse_minute(text: &str) -> Option<u16> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        let minute = h.checked_mul(60)? + m;
        (m < 60 && minute <= DAY_MINUTES).then_some(minute)
    }

    /// `"HH:MM"` of minutes since midnight.
    pub fn format_minute(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    /// The instants of this range on `date` at a center in `tz`.
    pub fn on(self, tz: Tz, date: NaiveDate) -> Interval {
        Interval {
            start: instant(tz, date, self.start),
            end: instant(tz, date, self.end),
        }
    }
}

/// Weekly hours of a doctor at a center.
#[derive(Debug, Clone)]
pub struct WeeklyHours {
    pub id: Uuid,
    pub center_id: Uuid,
    pub weekday: Weekday,
    pub range: DayRange,
    /// First and last local date these hours apply (inclusive); `None`: unbounded.
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

impl WeeklyHours {
    /// Whether these hours apply on local `date`.
    pub fn applies_on(&self, date: NaiveDate) -> bool {
        date.weekday() == self.weekday
            && self.valid_from.is_none_or(|from| date >= from)
            && self.valid_until.is_none_or(|until| date <= until)
    }
}

/// What an exception does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionKind {
    /// The doctor is not available (at one center, or at every center when it names none).
    TimeOff,
    /// An opening outside the weekly hours, at one center.
    Extra,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::TimeOff => "time_off",
            ExceptionKind::Extra => "extra",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "time_off" => Some(ExceptionKind::TimeOff),
            "extra" => Some(ExceptionKind::Extra),
            _ => None,
        }
    }
}

/// An exception to the weekly hours on one local date.
#[derive(Debug, Clone)]
pub struct Exception {
    pub id: Uuid,
    /// `None` (time off only): at every center.
    pub center_id: Option<Uuid>,
    pub kind: ExceptionKind,
    pub date: NaiveDate,
    /// `None` (time off only): the whole day.
    pub range: Option<DayRange>,
}

impl Exception {
    fn concerns(&self, center_id: Uuid) -> bool {
        self.center_id.is_none_or(|c| c == center_id)
    }
}

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self { start, end }
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// The instant of local `minute` (0..=1440) on `date` in `tz`. A time the clock skips (the hour
/// of a spring-forward change) is the first instant after the gap; a time it repeats is the
/// earlier of the two.
pub fn instant(tz: Tz, date: NaiveDate, minute: u16) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    let local = midnight + Duration::minutes(i64::from(minute));
    let mut probe = local;
    // Gaps are at most a few hours; walk forward a minute at a time to the end of one.
    for _ in 0..=24 * 60 {
        if let Some(at) = tz.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    unreachable!("no time zone skips a whole day")
}

/// The local date of `at` in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// Sorts intervals and merges those that overlap or touch.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|i| i.start < i.end);
    intervals.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for interval in intervals {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

/// `from` minus `holes` (both sorted and merged).
pub fn subtract(from: &[Interval], holes: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::with_capacity(from.len());
    for interval in from {
        let mut cursor = interval.start;
        for hole in holes
            .iter()
            .filter(|h| h.end > interval.start && h.start < interval.end)
        {
            if hole.start > cursor {
                out.push(Interval::new(cursor, hole.start));
            }
            cursor = cursor.max(hole.end);
        }
        if cursor < interval.end {
            out.push(Interval::new(cursor, interval.end));
        }
    }
    out
}

/// Why a visit does or does not fit the doctor's agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the doctor's open time at that center.
    Open,
    /// The doctor has no working hours anywhere yet (their agenda is not set up): no agenda
    /// rule applies, only the booking rules that predate the agenda.
    NoAgenda,
    /// The doctor has working hours, but never at that center.
    NotAtCenter,
    /// Within the doctor's hours at that center, but they are off then.
    TimeOff,
    /// Outside the doctor's hours at that center.
    Outside,
}

/// One doctor's hours and exceptions.
#[derive(Debug, Clone, Default)]
pub struct Agenda {
    pub hours: Vec<WeeklyHours>,
    pub exceptions: Vec<Exception>,
}

impl Agenda {
    /// Whether the doctor has working hours at `center_id` (on any date).
    pub fn works_at(&self, center_id: Uuid) -> bool {
        self.hours.iter().any(|h| h.center_id == center_id)
    }

    /// Working time at the center over local dates `from..=to`, before time off: weekly hours
    /// valid on each date and extra openings, merged.
    fn scheduled(&self, center_id: Uuid, tz: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Interval> {
        let mut intervals = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            for hours in self
                .hours
                .iter()
                .filter(|h| h.center_id == center_id && h.applies_on(date))
            {
                intervals.push(hours.range.on(tz, date));
            }
        }
        for extra in self.exceptions.iter().filter(|e| {
            e.kind == ExceptionKind::Extra
                && e.center_id == Some(center_id)
                && e.date >= from
                && e.date <= to
        }) {
            if let Some(range) = extra.range {
                intervals.push(range.on(tz, extra.date));
            }
        }
        merge(intervals)
    }

    /// Time off that concerns the center over local dates `from..=to`, merged.
    fn time_off(&self, center_id: Uuid, tz: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Interval> {
        merge(
            self.exceptions
                .iter()
                .filter(|e| {
                    e.kind == ExceptionKind::TimeOff
                        && e.concerns(center_id)
                        && e.date >= from
                        && e.date <= to
                })
                .map(|e| {
                    e.range
                        .unwrap_or(DayRange {
                            start: 0,
                            end: DAY_MINUTES,
                        })
                        .on(tz, e.date)
                })
                .collect(),
        )
    }

    /// The doctor's open intervals at the center over local dates `from..=to`: sorted, merged,
    /// time off removed.
    pub fn open(&self, center_id: Uuid, tz: Tz, from: NaiveDate, to: NaiveDate) -> Vec<Interval> {
        subtract(
            &self.scheduled(center_id, tz, from, to),
            &self.time_off(center_id, tz, from, to),
        )
    }

    /// Whether a visit `[starts_at, ends_at)` at the center fits the agenda.
    pub fn check(&self, center_id: Uuid, tz: Tz, visit: Interval) -> Verdict {
        if self.hours.is_empty() {
            return Verdict::NoAgenda;
        }
        if !self.works_at(center_id)
            && !self
                .exceptions
                .iter()
                .any(|e| e.kind == ExceptionKind::Extra && e.center_id == Some(center_id))
        {
            return Verdict::NotAtCenter;
        }
        // A day either side: a visit near midnight may touch the neighbouring local dates.
        let from = local_date(tz, visit.start) - Duration::days(1);
        let to = local_date(tz, visit.end) + Duration::days(1);
        let scheduled = self.scheduled(center_id, tz, from, to);
        if !scheduled.iter().any(|i| i.contains(&visit)) {
            return Verdict::Outside;
        }
        let open = subtract(&scheduled, &self.time_off(center_id, tz, from, to));
        if open.iter().any(|i| i.contains(&visit)) {
            Verdict::Open
        } else {
            Verdict::TimeOff
        }
    }
}

/// What a free slot must leave room for.
#[derive(Debug, Clone, Copy)]
pub struct SlotSpec {
    pub duration: Duration,
    /// Busy time the service needs before and after the visit (preparation, cleaning).
    pub buffer_before: Duration,
    pub buffer_after: Duration,
    /// Distance between candidate starts, counted from the start of each open interval.
    pub step: Duration,
}

impl SlotSpec {
    /// A service's spec, with the step that suits it: its own duration up to half an hour
    /// (a 20-minute visit is offered at :00, :20, :40), every half hour for longer visits,
    /// never under 5 minutes.
    pub fn for_service(duration_minutes: i64, before_minutes: i64, after_minutes: i64) -> Self {
        Self {
            duration: Duration::minutes(duration_minutes),
            buffer_before: Duration::minutes(before_minutes),
            buffer_after: Duration::minutes(after_minutes),
            step: Duration::minutes(duration_minutes.clamp(5, 30)),
        }
    }

    /// The time a visit starting at `start` keeps the doctor busy (the visit and its buffers).
    pub fn occupied(&self, start: DateTime<Utc>) -> Interval {
        Interval::new(
            start - self.buffer_before,
            start + self.duration + self.buffer_after,
        )
    }
}

/// Free visits within `open` (sorted, merged) that start at or after `earliest` and whose
/// occupied time (visit and buffers) overlaps no `busy` interval (the occupied time of confirmed
/// appointments, sorted by start). Starts lie on the spec's grid from each open interval's start.
pub fn free_slots(
    open: &[Interval],
    busy: &[Interval],
    spec: SlotSpec,
    earliest: DateTime<Utc>,
) -> Vec<Interval> {
    let mut slots = Vec::new();
    if spec.step <= Duration::zero() || spec.duration <= Duration::zero() {
        return slots;
    }
    // Index of the first busy interval that may still overlap a candidate (candidates only
    // move forward in time).
    let mut first = 0;
    for window in open {
        let mut start = window.start;
        if earliest > start {
            // Jump to the first grid point at or after `earliest`.
            let steps = (earliest - start)
                .num_seconds()
                .div_euclid(spec.step.num_seconds())
                + i64::from((earliest - start).num_seconds() % spec.step.num_seconds() != 0);
            start += spec.step * i32::try_from(steps).unwrap_or(i32::MAX);
        }
        while start + spec.duration <= window.end {
            let occupied = spec.occupied(start);
            // Busy time over before this candidate is over for every later one too.
            while first < busy.len() && busy[first].end <= occupied.start {
                first += 1;
            }
            let clash = busy[first..]
                .iter()
                .take_while(|b| b.start < occupied.end)
                .any(|b| b.overlaps(&occupied));
            if !clash {
                slots.push(Interval::new(start, start + spec.duration));
            }
            start += spec.step;
        }
    }
    slots
}

/// A date on which two weekly ranges of one doctor (at centers in `tz_a` and `tz_b`) overlap in
/// time, if any. Compares real instants on each date both are valid (a year of dates is
/// enough to meet every weekday on both sides of a daylight saving change), so centers in
/// different time zones are compared as the clock on the wall says.
pub fn weekly_conflict(
    a: &WeeklyHours,
    tz_a: Tz,
    b: &WeeklyHours,
    tz_b: Tz,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let from = [a.valid_from, b.valid_from, Some(today)]
        .into_iter()
        .flatten()
        .max()
        .expect("today is always there");
    let until = match (a.valid_until, b.valid_until) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => from + Duration::days(400),
    }
    .min(from + Duration::days(400));
    for date in from.iter_days().take_while(|d| *d <= until) {
        if !a.applies_on(date) {
            continue;
        }
        let span = a.range.on(tz_a, date);
        for other_date in [date - Duration::days(1), date, date + Duration::days(1)] {
            if b.applies_on(other_date) && b.range.on(tz_b, other_date).overlaps(&span) {
                return Some(date);
            }
        }
    }
    None
}

fn weekday(iso: i16) -> Weekday {
    Weekday::try_from(u8::try_from(iso - 1).unwrap_or(0)).unwrap_or(Weekday::Mon)
}

fn range(start: Option<i16>, end: Option<i16>) -> Option<DayRange> {
    DayRange::new(u16::try_from(start?).ok()?, u16::try_from(end?).ok()?)
}

/// The agendas of `doctor_ids`, with the exceptions on local dates `from..=to` (pass a day
/// either side of the instants you care about). Doctors without hours get an empty agenda
/// ([`Verdict::NoAgenda`]). Every range of hours is loaded, ended ones too: a doctor whose
/// hours have all ended is still on the agenda, closed ([`Verdict::Outside`]), never treated
/// as one whose agenda was never set up.
pub async fn load(
    conn: &mut PgConnection,
    doctor_ids: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<Uuid, Agenda>, sqlx::Error> {
    let mut agendas: HashMap<Uuid, Agenda> = doctor_ids
        .iter()
        .map(|id| (*id, Agenda::default()))
        .collect();
    let hours = sqlx::query(
        "SELECT id, doctor_id, center_id, weekday, start_minute, end_minute, valid_from, valid_until
           FROM working_hours
          WHERE doctor_id = ANY($1)",
    )
    .bind(doctor_ids)
    .fetch_all(&mut *conn)
    .await?;
    for row in hours {
        let Some(range) = range(row.try_get("start_minute")?, row.try_get("end_minute")?) else {
            continue;
        };
        let doctor_id: Uuid = row.try_get("doctor_id")?;
        agendas
            .entry(doctor_id)
            .or_default()
            .hours
            .push(WeeklyHours {
                id: row.try_get("id")?,
                center_id: row.try_get("center_id")?,
                weekday: weekday(row.try_get("weekday")?),
                range,
                valid_from: row.try_get("valid_from")?,
                valid_until: row.try_get("valid_until")?,
            });
    }
    let exceptions = sqlx::query(
        "SELECT id, doctor_id, center_id, kind, date, start_minute, end_minute
           FROM agenda_exceptions
          WHERE doctor_id = ANY($1) AND date BETWEEN $2 AND $3",
    )
    .bind(doctor_ids)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    for row in exceptions {
        let kind: String = row.try_get("kind")?;
        let Some(kind) = ExceptionKind::parse(&kind) else {
            continue;
        };
        let doctor_id: Uuid = row.try_get("doctor_id")?;
        agendas
            .entry(doctor_id)
            .or_default()
            .exceptions
            .push(Exception {
                id: row.try_get("id")?,
                center_id: row.try_get("center_id")?,
                kind,
                date: row.try_get("date")?,
                range: range(row.try_get("start_minute")?, row.try_get("end_minute")?),
            });
    }
    Ok(agendas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Atlantic::Canary, Europe::Madrid};

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hm(text: &str) -> u16 {
        DayRange::parse_minute(text).unwrap()
    }

    fn weekly(center: Uuid, day: Weekday, start: &str, end: &str) -> WeeklyHours {
        WeeklyHours {
            id: Uuid::new_v4(),
            center_id: center,
            weekday: day,
            range: DayRange::new(hm(start), hm(end)).unwrap(),
            valid_from: None,
            valid_until: None,
        }
    }

    fn weekdays(center: Uuid, start: &str, end: &str) -> Vec<WeeklyHours> {
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ]
        .into_iter()
        .map(|d| weekly(center, d, start, end))
        .collect()
    }

    #[test]
    fn minutes_parse_and_format() {
        assert_eq!(DayRange::parse_minute("09:30"), Some(570));
        assert_eq!(DayRange::parse_minute("24:00"), Some(1440));
        assert_eq!(DayRange::parse_minute("24:01"), None);
        assert_eq!(DayRange::parse_minute("9:30"), None);
        assert_eq!(DayRange::parse_minute("09:60"), None);
        assert_eq!(DayRange::format_minute(1440), "24:00");
        assert!(DayRange::new(600, 600).is_none());
    }

    #[test]
    fn nine_local_stays_nine_across_the_spring_change() {
        let center = Uuid::new_v4();
        let agenda = Agenda {
            hours: weekdays(center, "09:00", "14:00"),
            exceptions: vec![],
        };
        let open = agenda.open(center, Madrid, date("2027-03-26"), date("2027-03-29"));
        assert_eq!(
            open,
            vec![
                Interval::new(utc("2027-03-26T08:00:00Z"), utc("2027-03-26T13:00:00Z")),
                Interval::new(utc("2027-03-29T07:00:00Z"), utc("2027-03-29T12:00:00Z")),
            ]
        );
        // And in autumn, Canary time: 09:00 is 09:00Z in winter, 08:00Z in summer.
        let open = agenda.open(center, Canary, date("2027-10-29"), date("2027-11-01"));
        assert_eq!(open[0].start, utc("2027-10-29T08:00:00Z"));
        assert_eq!(open[1].start, utc("2027-11-01T09:00:00Z"));
    }

    #[test]
    fn a_skipped_local_time_is_the_end_of_the_gap() {
        // 02:30 does not exist in Madrid on 2027-03-28: the clock jumps from 02:00 to 03:00.
        assert_eq!(
            instant(Madrid, date("2027-03-28"), hm("02:30")),
            utc("2027-03-28T01:00:00Z")
        );
        assert_eq!(
            instant(Madrid, date("2027-03-28"), DAY_MINUTES),
            utc("2027-03-28T22:00:00Z")
        );
    }

    #[test]
    fn time_off_and_extra_openings_change_exactly_their_hours() {
        let center = Uuid::new_v4();
        let other = Uuid::new_v4();
        let friday = date("2027-03-26");
        let agenda = Agenda {
            hours: weekdays(center, "09:00", "14:00"),
            exceptions: vec![
                Exception {
                    id: Uuid::new_v4(),
                    center_id: None,
                    kind: ExceptionKind::TimeOff,
                    date: friday,
                    range: DayRange::new(hm("10:00"), hm("11:30")),
                },
                Exception {
                    id: Uuid::new_v4(),
                    center_id: Some(center),
                    kind: ExceptionKind::Extra,
                    date: friday,
                    range: DayRange::new(hm("16:00"), hm("18:00")),
                },
                Exception {
                    id: Uuid::new_v4(),
                    center_id: Some(other),
                    kind: ExceptionKind::TimeOff,
                    date: friday,
                    range: None,
                },
            ],
        };
        let open = agenda.open(center, Madrid, friday, friday);
        assert_eq!(
            open,
            vec![
                Interval::new(utc("2027-03-26T08:00:00Z"), utc("2027-03-26T09:00:00Z")),
                Interval::new(utc("2027-03-26T10:30:00Z"), utc("2027-03-26T13:00:00Z")),
                Interval::new(utc("2027-03-26T15:00:00Z"), utc("2027-03-26T17:00:00Z")),
            ]
        );
        let visit = |s: &str, e: &str| Interval::new(utc(s), utc(e));
        let check = |v| agenda.check(center, Madrid, v);
        assert_eq!(
            check(visit("2027-03-26T08:00:00Z", "2027-03-26T08:30:00Z")),
            Verdict::Open
        );
        assert_eq!(
            check(visit("2027-03-26T09:30:00Z", "2027-03-26T10:00:00Z")),
            Verdict::TimeOff
        );
        assert_eq!(
            check(visit("2027-03-26T12:30:00Z", "2027-03-26T13:30:00Z")),
            Verdict::Outside
        );
        assert_eq!(
            check(visit("2027-03-26T16:00:00Z", "2027-03-26T16:30:00Z")),
            Verdict::Open
        );
        assert_eq!(
            agenda.check(
                other,
                Madrid,
                visit("2027-03-26T08:00:00Z", "2027-03-26T08:30:00Z")
            ),
            Verdict::NotAtCenter
        );
        assert_eq!(
            Agenda::default().check(
                center,
                Madrid,
                visit("2027-03-26T08:00:00Z", "2027-03-26T08:30:00Z")
            ),
            Verdict::NoAgenda
        );
    }

    #[test]
    fn validity_bounds_the_weekly_hours() {
        let center = Uuid::new_v4();
        let mut hours = weekly(center, Weekday::Mon, "09:00", "10:00");
        hours.valid_from = Some(date("2027-03-08"));
        hours.valid_until = Some(date("2027-03-15"));
        let agenda = Agenda {
            hours: vec![hours],
            exceptions: vec![],
        };
        let open = agenda.open(center, Madrid, date("2027-03-01"), date("2027-03-31"));
        let days: Vec<NaiveDate> = open.iter().map(|i| local_date(Madrid, i.start)).collect();
        assert_eq!(days, [date("2027-03-08"), date("2027-03-15")]);
    }

    #[test]
    fn slots_leave_room_for_buffers_and_notice() {
        let open = [Interval::new(
            utc("2027-03-26T08:00:00Z"),
            utc("2027-03-26T11:00:00Z"),
        )];
        let spec = SlotSpec::for_service(30, 0, 10);
        // A confirmed 30-minute visit at 09:00Z with a 10-minute buffer after: busy 09:00–09:40.
        let busy = [Interval::new(
            utc("2027-03-26T09:00:00Z"),
            utc("2027-03-26T09:40:00Z"),
        )];
        let starts = |earliest| -> Vec<String> {
            free_slots(&open, &busy, spec, earliest)
                .iter()
                .map(|s| s.start.format("%H:%M").to_string())
                .collect()
        };
        // 08:30 would run 08:30–09:10 with its buffer (clash); 09:00 and 09:30 clash too.
        assert_eq!(
            starts(utc("2027-03-26T00:00:00Z")),
            ["08:00", "10:00", "10:30"]
        );
        // Minimum notice: nothing before `earliest`, grid kept.
        assert_eq!(starts(utc("2027-03-26T08:01:00Z")), ["10:00", "10:30"]);
        // A visit must fit before the end of the window.
        let spec = SlotSpec::for_service(60, 0, 0);
        let all = free_slots(&open, &[], spec, utc("2027-03-26T00:00:00Z"));
        assert_eq!(all.len(), 5, "08:00 08:30 09:00 09:30 10:00");
    }

    #[test]
    fn hours_at_two_centers_conflict_only_when_their_times_meet() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let today = date("2027-01-04");
        let madrid = weekly(a, Weekday::Mon, "09:00", "14:00");
        let afternoon = weekly(b, Weekday::Mon, "14:00", "19:00");
        assert_eq!(
            weekly_conflict(&madrid, Madrid, &afternoon, Madrid, today),
            None
        );
        let late_morning = weekly(b, Weekday::Mon, "13:00", "15:00");
        assert_eq!(
            weekly_conflict(&madrid, Madrid, &late_morning, Madrid, today),
            Some(date("2027-01-04"))
        );
        // 14:00 in Madrid is 13:00 in the Canaries: Canary 13:00–15:00 starts as Madrid ends.
        assert_eq!(
            weekly_conflict(&madrid, Madrid, &late_morning, Canary, today),
            None
        );
        // Validity that never meets: no conflict.
        let mut until_march = madrid.clone();
        until_march.valid_until = Some(date("2027-03-01"));
        let mut from_april = late_morning.clone();
        from_april.valid_from = Some(date("2027-04-01"));
        assert_eq!(
            weekly_conflict(&until_march, Madrid, &from_april, Madrid, today),
            None
        );
    }
}
