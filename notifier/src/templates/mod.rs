//! Messages patients understand: Spanish and English texts for every event kind, times in the
//! center's time zone (named by its city, not its IANA id), an `.ics` calendar file calendar
//! apps accept (RFC 5545; one calendar event per appointment even when it is moved), and SMS
//! texts that fit in two GSM-7 segments.
//!
//! Rendering is deterministic for a given event and directory state (the `.ics` `DTSTAMP` is
//! the event's time, not the clock), so a message sent again after a crash is the same message.
//!
//! One file per part: what each event kind says (`messages`) and the words around it
//! (`words`), dates (`dates`), reason codes in words (`reasons`), the email bodies (`body`),
//! the calendar file (`ics`) and SMS fitting (`sms`); [`render`] works out the facts once and
//! puts the parts together.

mod body;
mod dates;
mod ics;
mod messages;
mod reasons;
mod sms;
mod welcome;
mod words;

pub use welcome::welcome;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use citaflow_schemas::{BookingEvent, BookingEventKind};

pub use dates::{long_date, short_date, zone_city};
pub use ics::{Ics, IcsEvent, IcsMethod, ics};
pub use reasons::reason_text;
pub use sms::{SMS_MAX_CHARS, fit_sms, fit_sms_keeping};

use dates::long_range;
use messages::{Message, message};

/// Language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Where an appointment sits in the patient's calendar. A reschedule creates a new booking,
/// but for the patient it is the same appointment: the calendar entry keeps the id of the first
/// booking of the chain and its `SEQUENCE` counts the moves, so calendar apps update the entry
/// instead of adding a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRef {
    /// Id of the first booking of the chain of reschedules.
    pub uid: String,
    /// How many times the appointment was moved before this booking.
    pub sequence: u32,
}

/// What a message needs to know besides the event.
#[derive(Debug, Clone)]
pub struct Context {
    pub patient_name: String,
    pub doctor_name: Option<String>,
    pub center_name: Option<String>,
    pub center_address: Option<String>,
    pub time_zone: Tz,
    pub lang: Lang,
    /// Start of the booking this one replaces (reschedules, refused reschedules).
    pub previous_starts_at: Option<DateTime<Utc>>,
    pub calendar: CalendarRef,
    /// The sender's address, the calendar event's `ORGANIZER` (email only).
    pub organizer: Option<String>,
    /// The web app's address (`notifier.public_base_url`), without a trailing slash.
    pub app_url: String,
}

/// A rendered notification.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
    /// For confirmed, moved and cancelled appointments.
    pub ics: Option<Ics>,
}

/// What the texts are made of, worked out once per message.
struct Facts<'a> {
    /// The start, long (`martes, 1 de diciembre de 2026, 10:30`).
    when: String,
    /// The start and end, long (`…, de 10:30 a 11:00`).
    when_range: String,
    /// The start, short (`01/12/2026 10:30`).
    when_short: String,
    /// The start of the booking this one replaces, long and short.
    old: Option<(String, String)>,
    /// The city the center's time zone is named after.
    city: String,
    doctor: String,
    center: String,
    /// The center with its address, when there is one.
    place: String,
    reason: &'static str,
    reason_code: Option<&'a str>,
    /// The event is about a reschedule (it has a previous booking).
    is_move: bool,
    /// A waitlist offer: until when it is held (local time, `HH:MM`, with the date when not
    /// the visit's).
    offer: Option<String>,
}

/// Whether patients are told about events of `kind`. Attendance is the clinic's record, not
/// news to the patient: no email or SMS for `ATTENDED` or `NO_SHOW`. (An exhaustive match, so
/// a new kind must decide here.)
pub fn tells_the_patient(kind: BookingEventKind) -> bool {
    match kind {
        BookingEventKind::Confirmed
        | BookingEventKind::Rejected
        | BookingEventKind::Cancelled
        | BookingEventKind::Rescheduled
        | BookingEventKind::ReminderDue
        | BookingEventKind::WaitlistOffered => true,
        BookingEventKind::Attended
        | BookingEventKind::NoShow
        | BookingEventKind::WaitlistExpired => false,
    }
}

/// Renders the notification of `event`, or `None` for a kind patients are not told about
/// ([`tells_the_patient`]). `now` is only a fallback for missing times.
pub fn render(event: &BookingEvent, ctx: &Context, now: DateTime<Utc>) -> Option<Rendered> {
    let starts_at = DateTime::from_timestamp_millis(event.starts_at).unwrap_or(now);
    let ends_at = DateTime::from_timestamp_millis(event.ends_at).unwrap_or(starts_at);
    let occurred_at = DateTime::from_timestamp_millis(event.occurred_at)
        .filter(|t| t.timestamp() > 0)
        .unwrap_or(now);
    let (tz, lang) = (ctx.time_zone, ctx.lang);
    let (doctor, center) =
        words::doctor_and_center(lang, ctx.doctor_name.as_deref(), ctx.center_name.as_deref());
    let address = ctx.center_address.clone().unwrap_or_default();
    let place = if address.is_empty() {
        center.clone()
    } else {
        format!("{center} ({address})")
    };
    let reason_code = event.reason_code.as_deref();
    let facts = Facts {
        when: long_date(starts_at, tz, lang),
        when_range: long_range(starts_at, ends_at, tz, lang),
        when_short: short_date(starts_at, tz),
        old: ctx
            .previous_starts_at
            .map(|t| (long_date(t, tz, lang), short_date(t, tz))),
        city: zone_city(tz),
        doctor,
        center,
        place,
        reason: reason_text(reason_code, lang),
        reason_code,
        is_move: event.previous_booking_id.is_some(),
        offer: offer_facts(event, ctx, starts_at),
    };

    let Message {
        subject,
        paragraphs,
        sms,
    } = message(event.kind, lang, &facts)?;
    let (greeting, closing) = words::greeting_and_closing(lang, &ctx.patient_name);
    let link = link(event, ctx);
    let clinic = ctx.center_name.as_deref().unwrap_or("Citaflow");
    let footer = match ctx.center_address.as_deref() {
        Some(address) if !address.is_empty() => format!("{clinic} · {address}"),
        _ => clinic.to_owned(),
    };
    let (text, html) = body::bodies(
        lang.code(),
        clinic,
        &footer,
        &subject,
        &greeting,
        &paragraphs,
        link.as_ref().map(|(label, url)| body::Action {
            label: label.text(lang),
            url,
        }),
        closing,
    );
    let sms = format!("Citaflow: {sms}");
    let calendar = match event.kind {
        BookingEventKind::Confirmed | BookingEventKind::Rescheduled => Some(IcsMethod::Publish),
        BookingEventKind::Cancelled => Some(IcsMethod::Cancel),
        BookingEventKind::Rejected
        | BookingEventKind::Attended
        | BookingEventKind::NoShow
        | BookingEventKind::ReminderDue
        | BookingEventKind::WaitlistOffered
        | BookingEventKind::WaitlistExpired => None,
    };
    let ics = calendar.map(|method| {
        let (summary, description, file_name) = words::calendar(lang, &facts.doctor, &facts.place);
        Ics {
            method,
            file_name,
            content: ics(&IcsEvent {
                method,
                calendar: &ctx.calendar,
                starts_at,
                ends_at,
                stamp: occurred_at,
                summary: &summary,
                description: &description,
                location: &facts.place,
                organizer: ctx
                    .organizer
                    .as_deref()
                    .map(|email| (facts.center.as_str(), email)),
            }),
        }
    });
    Some(Rendered {
        subject,
        text,
        html,
        sms: match &link {
            Some((_, url)) => fit_sms_keeping(&sms, url),
            None => fit_sms(&sms),
        },
        ics,
    })
}

/// What a message's link leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkLabel {
    /// The appointment's page: view, move or cancel it.
    Appointment,
    /// The booking page: ask for another time.
    BookAgain,
    /// The waitlist offer's page: take or decline it.
    Offer,
}

impl LinkLabel {
    fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (LinkLabel::Appointment, Lang::Es) => "Ver, cambiar o cancelar su cita",
            (LinkLabel::Appointment, Lang::En) => "View, move or cancel your appointment",
            (LinkLabel::BookAgain, Lang::Es) => "Pedir otra cita",
            (LinkLabel::BookAgain, Lang::En) => "Book another time",
            (LinkLabel::Offer, Lang::Es) => "Reservar esta hora",
            (LinkLabel::Offer, Lang::En) => "Book this time",
        }
    }
}

/// The page of the web app (`Context::app_url`) a message leads to: the appointment (view,
/// cancel, move after signing in), the booking page after a refusal or a cancellation, the
/// offer of a freed slot. None without a web app address.
fn link(event: &BookingEvent, ctx: &Context) -> Option<(LinkLabel, String)> {
    let base = ctx.app_url.trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    let appointment = |id: &str| format!("{base}/app/appointments/{id}");
    match event.kind {
        BookingEventKind::Confirmed
        | BookingEventKind::Rescheduled
        | BookingEventKind::ReminderDue => {
            Some((LinkLabel::Appointment, appointment(&event.booking_id)))
        }
        // A refused move keeps the old appointment: lead back to it.
        BookingEventKind::Rejected => match event.previous_booking_id.as_deref() {
            Some(old) => Some((LinkLabel::Appointment, appointment(old))),
            None => Some((LinkLabel::BookAgain, format!("{base}/app/"))),
        },
        BookingEventKind::Cancelled => Some((LinkLabel::BookAgain, format!("{base}/app/"))),
        BookingEventKind::WaitlistOffered => {
            let offer = event.waitlist_offer_id.as_deref()?;
            Some((
                LinkLabel::Offer,
                format!("{base}/app/waitlist/offers/{offer}"),
            ))
        }
        BookingEventKind::Attended
        | BookingEventKind::NoShow
        | BookingEventKind::WaitlistExpired => None,
    }
}

/// Until when a waitlist offer is held, in the center's time (with the date when it is not the
/// visit's day).
fn offer_facts(event: &BookingEvent, ctx: &Context, starts_at: DateTime<Utc>) -> Option<String> {
    event.waitlist_offer_id.as_deref()?;
    let hold = DateTime::from_timestamp_millis(event.hold_until?)?.with_timezone(&ctx.time_zone);
    let same_day = hold.date_naive() == starts_at.with_timezone(&ctx.time_zone).date_naive();
    Some(if same_day {
        hold.format("%H:%M").to_string()
    } else {
        hold.format("%d/%m %H:%M").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::ics::tests::content_lines;
    use super::*;
    use citaflow_schemas::BookingStatus;

    const BOOKING: &str = "4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f";

    /// The notification of a kind patients are told about.
    fn render(event: &BookingEvent, ctx: &Context, now: DateTime<Utc>) -> Rendered {
        super::render(event, ctx, now).expect("a kind patients are told about")
    }

    #[test]
    fn attendance_is_not_news_to_the_patient() {
        for kind in [BookingEventKind::Attended, BookingEventKind::NoShow] {
            assert!(!tells_the_patient(kind));
            assert!(super::render(&event(kind, None), &ctx(Lang::Es), Utc::now()).is_none());
        }
        assert!(tells_the_patient(BookingEventKind::Confirmed));
    }

    fn event(kind: BookingEventKind, reason: Option<&str>) -> BookingEvent {
        BookingEvent {
            event_id: "e".into(),
            kind,
            booking_id: BOOKING.into(),
            command_id: "c".into(),
            doctor_id: "d".into(),
            patient_id: "p".into(),
            center_id: "x".into(),
            // 2026-12-01T09:30:00Z = 10:30 in Madrid
            starts_at: 1_796_117_400_000,
            ends_at: 1_796_119_200_000,
            status: BookingStatus::Confirmed,
            reason_code: reason.map(str::to_string),
            reason_message: None,
            previous_booking_id: None,
            // 2026-11-20T08:00:00Z
            occurred_at: 1_795_161_600_000,
            service_id: None,
            waitlist_offer_id: None,
            waitlist_entry_id: None,
            hold_until: None,
        }
    }

    fn ctx(lang: Lang) -> Context {
        Context {
            patient_name: "Lucía <Pérez>".into(),
            doctor_name: Some("Dra. Marta Ruiz".into()),
            center_name: Some("Clínica Centro".into()),
            center_address: Some("Calle Mayor 1, Madrid".into()),
            time_zone: "Europe/Madrid".parse().unwrap(),
            lang,
            previous_starts_at: None,
            calendar: CalendarRef {
                uid: BOOKING.into(),
                sequence: 0,
            },
            organizer: Some("citas@citaflow.local".into()),
            app_url: "https://citas.example.test/".into(),
        }
    }

    #[test]
    fn a_waitlist_offer_says_until_when_it_is_held_and_links_to_its_page() {
        let mut offered = event(BookingEventKind::WaitlistOffered, Some("waitlist_offer"));
        offered.waitlist_offer_id = Some("0f0e0d0c-0000-4000-8000-000000000001".into());
        // 15 minutes after 2026-11-20T08:00:00Z, 09:15 in Madrid.
        offered.hold_until = Some(1_795_161_600_000 + 15 * 60 * 1000);
        let link =
            "https://citas.example.test/app/waitlist/offers/0f0e0d0c-0000-4000-8000-000000000001";
        for (lang, subject, held) in [
            (Lang::Es, "Se ha liberado una cita", "hasta las "),
            (Lang::En, "A slot has opened up", "until "),
        ] {
            let r = render(&offered, &ctx(lang), Utc::now());
            assert!(r.subject.starts_with(subject), "{}", r.subject);
            assert!(r.text.contains(link), "{}", r.text);
            assert!(r.text.contains(held), "{}", r.text);
            assert!(
                r.sms.ends_with(link),
                "the link survives the SMS fitting: {}",
                r.sms
            );
            assert!(r.ics.is_none());
        }
        // Without the offer's id there is nothing to link to: no message.
        offered.waitlist_offer_id = None;
        assert!(super::render(&offered, &ctx(Lang::Es), Utc::now()).is_none());
        let expired = event(BookingEventKind::WaitlistExpired, None);
        assert!(!tells_the_patient(BookingEventKind::WaitlistExpired));
        assert!(super::render(&expired, &ctx(Lang::Es), Utc::now()).is_none());
    }

    #[test]
    fn confirmed_in_spanish_uses_the_center_time_zone() {
        let r = render(
            &event(BookingEventKind::Confirmed, None),
            &ctx(Lang::Es),
            Utc::now(),
        );
        assert_eq!(
            r.subject,
            "Cita confirmada: martes, 1 de diciembre de 2026, 10:30"
        );
        assert!(
            r.text
                .contains("martes, 1 de diciembre de 2026, de 10:30 a 11:00 (hora de Madrid)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("Calle Mayor 1, Madrid"));
        assert!(
            r.html.contains("Lucía &lt;Pérez&gt;"),
            "names are escaped in HTML"
        );
        // The SMS and both bodies lead to the appointment's page in the web app; the HTML is
        // laid out under the clinic's name, its address below.
        let page = format!("https://citas.example.test/app/appointments/{BOOKING}");
        assert_eq!(
            r.sms,
            format!(
                "Citaflow: Cita confirmada con Dra. Marta Ruiz en Clinica Centro el 01/12/2026 10:30. {page}"
            )
        );
        assert!(
            r.text
                .contains(&format!("Ver, cambiar o cancelar su cita: {page}")),
            "{}",
            r.text
        );
        assert!(r.html.contains(&format!("href=\"{page}\"")), "{}", r.html);
        assert!(r.html.contains(">Clínica Centro</td>"), "{}", r.html);
        assert!(r.html.contains("Clínica Centro · Calle Mayor 1, Madrid"));
        let ics = r.ics.expect("confirmed has an ics");
        assert_eq!(ics.method, IcsMethod::Publish);
        let lines = content_lines(&ics.content);
        for expected in [
            "METHOD:PUBLISH",
            "DTSTART:20261201T093000Z",
            "DTEND:20261201T100000Z",
            "DTSTAMP:20261120T080000Z",
            "SEQUENCE:0",
            "STATUS:CONFIRMED",
            "LOCATION:Clínica Centro (Calle Mayor 1\\, Madrid)",
            "UID:4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f@citaflow",
            "ORGANIZER;CN=\"Clínica Centro\":mailto:citas@citaflow.local",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} missing from {lines:#?}"
            );
        }
    }

    #[test]
    fn the_calendar_file_is_well_formed() {
        let r = render(
            &event(BookingEventKind::Confirmed, None),
            &ctx(Lang::En),
            Utc::now(),
        );
        let lines = content_lines(&r.ics.unwrap().content);
        assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
        assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.split([':', ';']).next().unwrap())
            .collect();
        for required in [
            "VERSION",
            "PRODID",
            "UID",
            "DTSTAMP",
            "DTSTART",
            "DTEND",
            "SUMMARY",
            "ORGANIZER",
        ] {
            assert_eq!(
                names.iter().filter(|n| **n == required).count(),
                1,
                "{required} once"
            );
        }
        let begin = names.iter().position(|n| *n == "BEGIN").unwrap();
        assert_eq!(
            lines[begin + 5],
            "BEGIN:VEVENT",
            "one VEVENT after the calendar properties"
        );
        assert_eq!(lines[lines.len() - 2], "END:VEVENT");
    }

    #[test]
    fn a_move_keeps_the_calendar_entry_and_says_from_when() {
        let mut e = event(BookingEventKind::Rescheduled, None);
        e.previous_booking_id = Some("11111111-2222-3333-4444-555555555555".into());
        let mut c = ctx(Lang::En);
        c.previous_starts_at = Some("2026-11-30T15:00:00Z".parse().unwrap());
        c.calendar = CalendarRef {
            uid: "root".into(),
            sequence: 2,
        };
        let r = render(&e, &c, Utc::now());
        assert_eq!(
            r.subject,
            "Appointment moved: Tuesday, 1 December 2026, 10:30"
        );
        assert!(r.text.contains("was moved from Monday, 30 November 2026, 16:00 to Tuesday, 1 December 2026, 10:30–11:00 (Madrid time)"), "{}", r.text);
        assert!(
            r.sms
                .contains("moved from 30/11/2026 16:00 to 01/12/2026 10:30"),
            "{}",
            r.sms
        );
        let lines = content_lines(&r.ics.unwrap().content);
        assert!(lines.contains(&"UID:root@citaflow".to_string()));
        assert!(lines.contains(&"SEQUENCE:2".to_string()));
    }

    #[test]
    fn a_cancellation_takes_the_entry_off_the_calendar() {
        let mut c = ctx(Lang::Es);
        c.calendar = CalendarRef {
            uid: "root".into(),
            sequence: 1,
        };
        let r = render(
            &event(BookingEventKind::Cancelled, Some("cancelled_by_request")),
            &c,
            Utc::now(),
        );
        assert_eq!(
            r.subject,
            "Cita cancelada: martes, 1 de diciembre de 2026, 10:30"
        );
        assert!(
            !r.text.contains("Motivo"),
            "asking for it is not news: {}",
            r.text
        );
        let ics = r.ics.unwrap();
        assert_eq!(ics.method, IcsMethod::Cancel);
        let lines = content_lines(&ics.content);
        for expected in [
            "METHOD:CANCEL",
            "STATUS:CANCELLED",
            "UID:root@citaflow",
            "SEQUENCE:2",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} missing from {lines:#?}"
            );
        }
    }

    #[test]
    fn rejected_in_english_explains_the_reason_without_ics() {
        let r = render(
            &event(BookingEventKind::Rejected, Some("slot_taken")),
            &ctx(Lang::En),
            Utc::now(),
        );
        assert!(
            r.text
                .contains("the doctor already has an appointment at that time")
        );
        assert!(r.ics.is_none());
        assert!(r.sms.starts_with("Citaflow: We could not confirm"));
    }

    #[test]
    fn a_refused_move_says_the_old_appointment_stays() {
        let mut e = event(BookingEventKind::Rejected, Some("slot_taken"));
        e.previous_booking_id = Some("prev".into());
        let mut c = ctx(Lang::Es);
        c.previous_starts_at = Some("2026-11-30T15:00:00Z".parse().unwrap());
        let r = render(&e, &c, Utc::now());
        assert_eq!(r.subject, "No hemos podido cambiar su cita");
        assert!(
            r.text
                .contains("Su cita del lunes, 30 de noviembre de 2026, 16:00 sigue en pie."),
            "{}",
            r.text
        );
        e.reason_code = Some("previous_not_active".into());
        let r = render(&e, &c, Utc::now());
        assert!(!r.text.contains("sigue en pie"), "{}", r.text);
    }

    #[test]
    fn every_kind_renders_in_both_languages() {
        for kind in [
            BookingEventKind::Confirmed,
            BookingEventKind::Rejected,
            BookingEventKind::Cancelled,
            BookingEventKind::Rescheduled,
            BookingEventKind::ReminderDue,
        ] {
            for lang in [Lang::Es, Lang::En] {
                let mut c = ctx(lang);
                c.doctor_name = Some("D".repeat(200));
                let r = render(&event(kind, Some("rescheduled")), &c, Utc::now());
                assert!(!r.subject.is_empty() && r.sms.chars().count() <= SMS_MAX_CHARS);
                assert!(
                    !r.sms.contains("Lucía") && !r.subject.contains("Lucía"),
                    "no name in SMS or subject"
                );
            }
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let e = event(BookingEventKind::Confirmed, None);
        let a = render(&e, &ctx(Lang::Es), Utc::now());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = render(&e, &ctx(Lang::Es), Utc::now());
        assert_eq!(a.ics.unwrap().content, b.ics.unwrap().content);
        assert_eq!((a.text, a.sms), (b.text, b.sms));
    }
}
