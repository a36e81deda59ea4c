//! Messages patients understand: Spanish and English texts for every event kind, times in the
//! center's time zone (named by its city, not its IANA id), an `.ics` calendar file calendar
//! apps accept (RFC 5545; one calendar event per appointment even when it is moved), and SMS
//! texts that fit in two GSM-7 segments.
//!
//! Rendering is deterministic for a given event and directory state (the `.ics` `DTSTAMP` is
//! the event's time, not the clock), so a message sent again after a crash is the same message.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use citaflow_schemas::{BookingEvent, BookingEventKind};

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
}

/// `METHOD` of an iCalendar object (RFC 5546).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsMethod {
    /// A new or updated appointment.
    Publish,
    /// The appointment no longer happens.
    Cancel,
}

impl IcsMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            IcsMethod::Publish => "PUBLISH",
            IcsMethod::Cancel => "CANCEL",
        }
    }
}

/// An iCalendar attachment.
#[derive(Debug, Clone)]
pub struct Ics {
    pub method: IcsMethod,
    pub file_name: &'static str,
    /// CRLF line ends, folded at 75 octets.
    pub content: String,
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

const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS_ES: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `martes, 1 de diciembre de 2026, 09:30` / `Tuesday, 1 December 2026, 09:30`.
pub fn long_date(at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let local = at.with_timezone(&tz);
    let day = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    match lang {
        Lang::Es => format!(
            "{}, {} de {} de {}, {:02}:{:02}",
            DAYS_ES[day],
            local.day(),
            MONTHS_ES[month],
            local.year(),
            local.hour(),
            local.minute()
        ),
        Lang::En => format!(
            "{}, {} {} {}, {:02}:{:02}",
            DAYS_EN[day],
            local.day(),
            MONTHS_EN[month],
            local.year(),
            local.hour(),
            local.minute()
        ),
    }
}

/// The long date with the end time: `martes, 1 de diciembre de 2026, de 10:30 a 11:00`.
fn long_range(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let (start, end) = (starts_at.with_timezone(&tz), ends_at.with_timezone(&tz));
    if end <= start || end.date_naive() != start.date_naive() {
        return long_date(starts_at, tz, lang);
    }
    let day = start.weekday().num_days_from_monday() as usize;
    let month = start.month0() as usize;
    let (sh, sm, eh, em) = (start.hour(), start.minute(), end.hour(), end.minute());
    match lang {
        Lang::Es => format!(
            "{}, {} de {} de {}, de {sh:02}:{sm:02} a {eh:02}:{em:02}",
            DAYS_ES[day],
            start.day(),
            MONTHS_ES[month],
            start.year()
        ),
        Lang::En => format!(
            "{}, {} {} {}, {sh:02}:{sm:02}–{eh:02}:{em:02}",
            DAYS_EN[day],
            start.day(),
            MONTHS_EN[month],
            start.year()
        ),
    }
}

/// `01/12/2026 09:30`, for SMS.
pub fn short_date(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()
}

/// The city a time zone is named after (`Europe/Madrid` → `Madrid`), as patients say it.
pub fn zone_city(tz: Tz) -> String {
    let name = tz.name();
    name.rsplit('/').next().unwrap_or(name).replace('_', " ")
}

/// A rejection or cancellation reason in plain words.
pub fn reason_text(code: Option<&str>, lang: Lang) -> &'static str {
    match (code.unwrap_or(""), lang) {
        ("slot_taken", Lang::Es) => "el médico ya tiene una cita a esa hora",
        ("slot_taken", Lang::En) => "the doctor already has an appointment at that time",
        ("doctor_not_found" | "doctor_inactive", Lang::Es) => "el médico no está disponible",
        ("doctor_not_found" | "doctor_inactive", Lang::En) => "the doctor is not available",
        ("center_not_found" | "center_inactive", Lang::Es) => "el centro no está disponible",
        ("center_not_found" | "center_inactive", Lang::En) => "the center is not available",
        ("patient_not_found" | "patient_inactive", Lang::Es) => {
            "su ficha de paciente no está activa; contacte con el centro"
        }
        ("patient_not_found" | "patient_inactive", Lang::En) => {
            "your patient record is not active; please contact the center"
        }
        ("slot_in_past", Lang::Es) => "la hora solicitada ya ha pasado",
        ("slot_in_past", Lang::En) => "the requested time has already passed",
        ("invalid_duration", Lang::Es) => "la duración solicitada no es válida",
        ("invalid_duration", Lang::En) => "the requested duration is not valid",
        ("retries_exhausted" | "not_accepted", Lang::Es) => {
            "no pudimos procesarla por un problema técnico; inténtelo de nuevo"
        }
        ("retries_exhausted" | "not_accepted", Lang::En) => {
            "we could not process it because of a technical problem; please try again"
        }
        ("previous_not_active" | "previous_not_found", Lang::Es) => {
            "la cita que quería cambiar ya no está activa"
        }
        ("previous_not_active" | "previous_not_found", Lang::En) => {
            "the appointment you wanted to move is no longer active"
        }
        ("previous_other_patient", Lang::Es) => "la cita que quería cambiar no está a su nombre",
        ("previous_other_patient", Lang::En) => {
            "the appointment you wanted to move is not in your name"
        }
        ("rescheduled", Lang::Es) => "se ha cambiado a una nueva hora",
        ("rescheduled", Lang::En) => "it was moved to a new time",
        ("cancelled_by_request", Lang::Es) => "se canceló a petición suya o del centro",
        ("cancelled_by_request", Lang::En) => "it was cancelled at your or the center's request",
        (_, Lang::Es) => "no ha sido posible",
        (_, Lang::En) => "it was not possible",
    }
}

/// Whether a refused reschedule left the old appointment in place (it did unless the refusal
/// is about the old appointment itself).
fn old_appointment_kept(code: Option<&str>) -> bool {
    !matches!(
        code,
        Some("previous_not_active" | "previous_not_found" | "previous_other_patient")
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the notification of `event`. `now` is only a fallback for missing times.
pub fn render(event: &BookingEvent, ctx: &Context, now: DateTime<Utc>) -> Rendered {
    let starts_at = DateTime::from_timestamp_millis(event.starts_at).unwrap_or(now);
    let ends_at = DateTime::from_timestamp_millis(event.ends_at).unwrap_or(starts_at);
    let occurred_at = DateTime::from_timestamp_millis(event.occurred_at)
        .filter(|t| t.timestamp() > 0)
        .unwrap_or(now);
    let (tz, lang) = (ctx.time_zone, ctx.lang);
    let when = long_date(starts_at, tz, lang);
    let when_range = long_range(starts_at, ends_at, tz, lang);
    let when_short = short_date(starts_at, tz);
    let old = ctx
        .previous_starts_at
        .map(|t| (long_date(t, tz, lang), short_date(t, tz)));
    let city = zone_city(tz);
    let (doctor, center) = match lang {
        Lang::Es => (
            ctx.doctor_name
                .clone()
                .unwrap_or_else(|| "su médico".into()),
            ctx.center_name
                .clone()
                .unwrap_or_else(|| "el centro".into()),
        ),
        Lang::En => (
            ctx.doctor_name
                .clone()
                .unwrap_or_else(|| "your doctor".into()),
            ctx.center_name
                .clone()
                .unwrap_or_else(|| "the center".into()),
        ),
    };
    let address = ctx.center_address.clone().unwrap_or_default();
    let reason_code = event.reason_code.as_deref();
    let reason = reason_text(reason_code, lang);
    let place = if address.is_empty() {
        center.clone()
    } else {
        format!("{center} ({address})")
    };
    let is_move = event.previous_booking_id.is_some();

    // (subject, body paragraphs, sms)
    let (subject, paragraphs, sms): (String, Vec<String>, String) = match (event.kind, lang) {
        (BookingEventKind::Confirmed, Lang::Es) => (
            format!("Cita confirmada: {when}"),
            vec![
                format!("Su cita con {doctor} en {place} está confirmada para el {when_range} (hora de {city})."),
                "Si no puede acudir, cancélela o cámbiela con antelación para que otro paciente pueda aprovechar la hora.".into(),
            ],
            format!("Cita confirmada con {doctor} en {center} el {when_short}."),
        ),
        (BookingEventKind::Confirmed, Lang::En) => (
            format!("Appointment confirmed: {when}"),
            vec![
                format!("Your appointment with {doctor} at {place} is confirmed for {when_range} ({city} time)."),
                "If you cannot come, please cancel or move it in advance so that another patient can have the time.".into(),
            ],
            format!("Appointment confirmed with {doctor} at {center} on {when_short}."),
        ),
        (BookingEventKind::Rescheduled, Lang::Es) => (
            format!("Cita cambiada: {when}"),
            vec![match &old {
                Some((old_long, _)) => format!("Su cita con {doctor} en {place} se ha cambiado del {old_long} al {when_range} (hora de {city})."),
                None => format!("Su cita con {doctor} en {place} se ha cambiado al {when_range} (hora de {city})."),
            }],
            match &old {
                Some((_, old_short)) => format!("Su cita con {doctor} en {center} se ha cambiado del {old_short} al {when_short}."),
                None => format!("Su cita con {doctor} en {center} se ha cambiado al {when_short}."),
            },
        ),
        (BookingEventKind::Rescheduled, Lang::En) => (
            format!("Appointment moved: {when}"),
            vec![match &old {
                Some((old_long, _)) => format!("Your appointment with {doctor} at {place} was moved from {old_long} to {when_range} ({city} time)."),
                None => format!("Your appointment with {doctor} at {place} was moved to {when_range} ({city} time)."),
            }],
            match &old {
                Some((_, old_short)) => format!("Your appointment with {doctor} at {center} was moved from {old_short} to {when_short}."),
                None => format!("Your appointment with {doctor} at {center} was moved to {when_short}."),
            },
        ),
        (BookingEventKind::Rejected, Lang::Es) if is_move => {
            let kept = match (&old, old_appointment_kept(reason_code)) {
                (Some((old_long, _)), true) => format!("Su cita del {old_long} sigue en pie."),
                (None, true) => "Su cita anterior sigue en pie.".into(),
                (_, false) => "Si lo desea, puede solicitar una cita nueva.".into(),
            };
            (
                "No hemos podido cambiar su cita".into(),
                vec![format!("No hemos podido cambiar su cita con {doctor} en {place} al {when}: {reason}."), kept],
                match (&old, old_appointment_kept(reason_code)) {
                    (Some((_, old_short)), true) => format!("No pudimos cambiar su cita al {when_short}: {reason}. Su cita del {old_short} se mantiene."),
                    _ => format!("No pudimos cambiar su cita al {when_short}: {reason}."),
                },
            )
        }
        (BookingEventKind::Rejected, Lang::En) if is_move => {
            let kept = match (&old, old_appointment_kept(reason_code)) {
                (Some((old_long, _)), true) => format!("Your appointment on {old_long} stays as it was."),
                (None, true) => "Your previous appointment stays as it was.".into(),
                (_, false) => "You can request a new appointment at any time.".into(),
            };
            (
                "We could not move your appointment".into(),
                vec![format!("We could not move your appointment with {doctor} at {place} to {when}: {reason}."), kept],
                match (&old, old_appointment_kept(reason_code)) {
                    (Some((_, old_short)), true) => format!("We could not move your appointment to {when_short}: {reason}. Your appointment on {old_short} stays."),
                    _ => format!("We could not move your appointment to {when_short}: {reason}."),
                },
            )
        }
        (BookingEventKind::Rejected, Lang::Es) => (
            format!("No hemos podido confirmar su cita del {when}"),
            vec![
                format!("No hemos podido confirmar su cita con {doctor} en {place} para el {when}: {reason}."),
                "Puede solicitar otra hora cuando quiera.".into(),
            ],
            format!("No pudimos confirmar su cita del {when_short} en {center}: {reason}."),
        ),
        (BookingEventKind::Rejected, Lang::En) => (
            format!("We could not confirm your appointment on {when}"),
            vec![
                format!("We could not confirm your appointment with {doctor} at {place} on {when}: {reason}."),
                "You can request another time whenever you like.".into(),
            ],
            format!("We could not confirm your appointment on {when_short} at {center}: {reason}."),
        ),
        (BookingEventKind::Cancelled, Lang::Es) => {
            let mut body = format!("Su cita con {doctor} en {place} del {when} ha sido cancelada.");
            if !matches!(reason_code, None | Some("cancelled_by_request")) {
                body.push_str(&format!(" Motivo: {reason}."));
            }
            (
                format!("Cita cancelada: {when}"),
                vec![body, "Si desea otra cita, puede solicitarla cuando quiera.".into()],
                format!("Su cita del {when_short} con {doctor} en {center} ha sido cancelada."),
            )
        }
        (BookingEventKind::Cancelled, Lang::En) => {
            let mut body = format!("Your appointment with {doctor} at {place} on {when} has been cancelled.");
            if !matches!(reason_code, None | Some("cancelled_by_request")) {
                body.push_str(&format!(" Reason: {reason}."));
            }
            (
                format!("Appointment cancelled: {when}"),
                vec![body, "If you would like another appointment, you can request one at any time.".into()],
                format!("Your appointment on {when_short} with {doctor} at {center} has been cancelled."),
            )
        }
    };
    let name = &ctx.patient_name;
    let (greeting, closing) = match lang {
        Lang::Es => (format!("Hola, {name}:"), "Un saludo,\nCitaflow"),
        Lang::En => (format!("Hello {name},"), "Kind regards,\nCitaflow"),
    };
    let text = format!("{greeting}\n\n{}\n\n{closing}\n", paragraphs.join("\n\n"));
    let html_paragraphs: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", html_escape(p)))
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject_html}</title></head>\
         <body><p>{greeting_html}</p>{html_paragraphs}<p>{closing_html}</p></body></html>",
        lang = if lang == Lang::Es { "es" } else { "en" },
        subject_html = html_escape(&subject),
        greeting_html = html_escape(&greeting),
        closing_html = html_escape(closing).replace('\n', "<br>"),
    );
    let calendar = match event.kind {
        BookingEventKind::Confirmed | BookingEventKind::Rescheduled => Some(IcsMethod::Publish),
        BookingEventKind::Cancelled => Some(IcsMethod::Cancel),
        BookingEventKind::Rejected => None,
    };
    let ics = calendar.map(|method| {
        let summary = match lang {
            Lang::Es => format!("Cita con {doctor}"),
            Lang::En => format!("Appointment with {doctor}"),
        };
        let description = match lang {
            Lang::Es => format!("Cita con {doctor} en {place}."),
            Lang::En => format!("Appointment with {doctor} at {place}."),
        };
        Ics {
            method,
            file_name: if lang == Lang::Es {
                "cita.ics"
            } else {
                "appointment.ics"
            },
            content: ics(&IcsEvent {
                method,
                calendar: &ctx.calendar,
                starts_at,
                ends_at,
                stamp: occurred_at,
                summary: &summary,
                description: &description,
                location: &place,
                organizer: ctx
                    .organizer
                    .as_deref()
                    .map(|email| (center.as_str(), email)),
            }),
        }
    });
    Rendered {
        subject,
        text,
        html,
        sms: fit_sms(&format!("Citaflow: {sms}")),
        ics,
    }
}

/// TEXT value escaping (RFC 5545 §3.3.11).
fn ics_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

/// A parameter value (RFC 5545 §3.1): quoted, without the characters a quoted value cannot hold.
fn ics_param(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

/// What goes into a calendar file.
pub struct IcsEvent<'a> {
    pub method: IcsMethod,
    pub calendar: &'a CalendarRef,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `DTSTAMP`: when this version of the appointment came to be.
    pub stamp: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    pub location: &'a str,
    /// Common name and email address of the organizer.
    pub organizer: Option<(&'a str, &'a str)>,
}

/// A single-event iCalendar object (RFC 5545) with an iTIP method (RFC 5546): `PUBLISH` for a
/// new or moved appointment, `CANCEL` (same `UID`, higher `SEQUENCE`) to take it off the
/// calendar. Times are UTC, so no `VTIMEZONE` is needed.
pub fn ics(e: &IcsEvent<'_>) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (status, sequence) = match e.method {
        IcsMethod::Publish => ("CONFIRMED", e.calendar.sequence),
        IcsMethod::Cancel => ("CANCELLED", e.calendar.sequence + 1),
    };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Citaflow//Bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        format!("METHOD:{}", e.method.as_str()),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}@citaflow", e.calendar.uid),
        format!("SEQUENCE:{sequence}"),
        format!("DTSTAMP:{}", stamp(e.stamp)),
        format!("DTSTART:{}", stamp(e.starts_at)),
        format!(
            "DTEND:{}",
            stamp(e.ends_at.max(e.starts_at + chrono::Duration::minutes(1)))
        ),
        format!("SUMMARY:{}", ics_escape(e.summary)),
        format!("DESCRIPTION:{}", ics_escape(e.description)),
    ];
    if !e.location.is_empty() {
        lines.push(format!("LOCATION:{}", ics_escape(e.location)));
    }
    if let Some((name, email)) = e.organizer {
        lines.push(format!("ORGANIZER;CN={}:mailto:{email}", ics_param(name)));
    }
    lines.extend([
        format!("STATUS:{status}"),
        "TRANSP:OPAQUE".to_string(),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ]);
    lines.iter().map(|l| fold(l) + "\r\n").collect()
}

/// Longest SMS text kept: two concatenated GSM-7 segments of 153 characters.
pub const SMS_MAX_CHARS: usize = 306;

/// Maps characters outside the GSM-7 basic set to close ones (so a Spanish text stays in the
/// 7-bit alphabet and two segments hold 306 characters) and cuts to [`SMS_MAX_CHARS`].
pub fn fit_sms(text: &str) -> String {
    const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    let mapped: String = text
        .chars()
        .map(|c| match c {
            c if GSM7.contains(c) => c,
            'á' => 'a',
            'í' => 'i',
            'ó' => 'o',
            'ú' => 'u',
            'Á' => 'A',
            'Í' => 'I',
            'Ó' => 'O',
            'Ú' => 'U',
            'È' | 'Ê' | 'Ë' => 'E',
            'ê' | 'ë' => 'e',
            'ç' => 'c',
            'ï' | 'î' => 'i',
            'ô' => 'o',
            'û' => 'u',
            'â' => 'a',
            '–' | '—' => '-',
            '‘' | '’' => '\'',
            '“' | '”' => '"',
            _ => '?',
        })
        .collect();
    if mapped.chars().count() <= SMS_MAX_CHARS {
        return mapped;
    }
    let cut: String = mapped.chars().take(SMS_MAX_CHARS - 3).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use citaflow_schemas::BookingStatus;

    const BOOKING: &str = "4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f";

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
        }
    }

    /// Unfolded content lines of an iCalendar object, checking the line rules on the way.
    fn content_lines(ics: &str) -> Vec<String> {
        assert!(ics.ends_with("\r\n"), "ends with CRLF");
        assert!(!ics.replace("\r\n", "").contains('\n'), "no bare LF");
        assert!(!ics.replace("\r\n", "").contains('\r'), "no bare CR");
        let mut lines: Vec<String> = Vec::new();
        for raw in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(raw.len() <= 75, "line longer than 75 octets: {raw}");
            match raw.strip_prefix(' ') {
                Some(rest) => lines
                    .last_mut()
                    .expect("a continuation follows a line")
                    .push_str(rest),
                None => lines.push(raw.to_string()),
            }
        }
        lines
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
        assert_eq!(
            r.sms,
            "Citaflow: Cita confirmada con Dra. Marta Ruiz en Clinica Centro el 01/12/2026 10:30."
        );
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
    fn ics_lines_are_folded_at_75_octets_and_text_is_escaped() {
        let long = "ñ".repeat(100);
        let calendar = CalendarRef {
            uid: "id".into(),
            sequence: 0,
        };
        let ics = ics(&IcsEvent {
            method: IcsMethod::Publish,
            calendar: &calendar,
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            stamp: Utc::now(),
            summary: &long,
            description: "a;b,c\\d\ne",
            location: "",
            organizer: Some(("Clínica \"Sur\"", "a@b.c")),
        });
        assert!(ics.split("\r\n").all(|line| line.len() <= 75));
        assert!(ics.contains("\r\n ñ"), "folded between characters");
        let lines = content_lines(&ics);
        assert!(lines.contains(&format!("SUMMARY:{long}")));
        assert!(lines.contains(&"DESCRIPTION:a\\;b\\,c\\\\d\\ne".to_string()));
        assert!(lines.contains(&"ORGANIZER;CN=\"Clínica Sur\":mailto:a@b.c".to_string()));
        assert!(
            !lines.iter().any(|l| l.starts_with("LOCATION")),
            "no empty LOCATION"
        );
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

    #[test]
    fn sms_text_stays_in_gsm7_and_two_segments() {
        let s = fit_sms("Cita confirmada con el Dr. Núñez en Clínica Óptima, día miércoles");
        assert_eq!(
            s,
            "Cita confirmada con el Dr. Nuñez en Clinica Optima, dia miércoles"
        );
        let long = fit_sms(&"a".repeat(500));
        assert_eq!(long.chars().count(), SMS_MAX_CHARS);
        assert!(long.ends_with("..."));
    }
}
