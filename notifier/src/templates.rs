//! Messages patients understand: Spanish and English texts for every event kind, times in the
//! center's time zone, an `.ics` for confirmed and moved appointments, and SMS texts that fit
//! in two GSM-7 segments.

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

/// What a message needs to know besides the event.
#[derive(Debug, Clone)]
pub struct Context {
    pub patient_name: String,
    pub doctor_name: Option<String>,
    pub center_name: Option<String>,
    pub center_address: Option<String>,
    pub time_zone: Tz,
    pub lang: Lang,
}

/// A rendered notification.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
    /// An iCalendar file for confirmed and rescheduled appointments.
    pub ics: Option<String>,
}

const MONTHS_ES: [&str; 12] = [
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
];
const MONTHS_EN: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
];
const DAYS_ES: [&str; 7] = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"];
const DAYS_EN: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// `lunes, 1 de diciembre de 2026, 09:30` / `Monday, 1 December 2026, 09:30`.
pub fn long_date(at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let local = at.with_timezone(&tz);
    let day = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    match lang {
        Lang::Es => format!(
            "{}, {} de {} de {}, {:02}:{:02}",
            DAYS_ES[day], local.day(), MONTHS_ES[month], local.year(), local.hour(), local.minute()
        ),
        Lang::En => format!(
            "{}, {} {} {}, {:02}:{:02}",
            DAYS_EN[day], local.day(), MONTHS_EN[month], local.year(), local.hour(), local.minute()
        ),
    }
}

/// `01/12/2026 09:30`, for SMS.
pub fn short_date(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()
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
        ("retries_exhausted", Lang::Es) => {
            "no pudimos procesarla por un problema técnico; inténtelo de nuevo"
        }
        ("retries_exhausted", Lang::En) => {
            "we could not process it because of a technical problem; please try again"
        }
        ("previous_not_active" | "previous_not_found", Lang::Es) => {
            "la cita que quería cambiar ya no está activa"
        }
        ("previous_not_active" | "previous_not_found", Lang::En) => {
            "the appointment you wanted to move is no longer active"
        }
        ("rescheduled", Lang::Es) => "se ha cambiado a una nueva hora",
        ("rescheduled", Lang::En) => "it was moved to a new time",
        ("cancelled_by_request", Lang::Es) => "se canceló a petición suya o del centro",
        ("cancelled_by_request", Lang::En) => "it was cancelled at your or the center's request",
        (_, Lang::Es) => "no ha sido posible",
        (_, Lang::En) => "it was not possible",
    }
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

/// Renders the notification of `event`.
pub fn render(event: &BookingEvent, ctx: &Context, now: DateTime<Utc>) -> Rendered {
    let starts_at = DateTime::from_timestamp_millis(event.starts_at).unwrap_or(now);
    let ends_at = DateTime::from_timestamp_millis(event.ends_at).unwrap_or(starts_at);
    let when = long_date(starts_at, ctx.time_zone, ctx.lang);
    let when_short = short_date(starts_at, ctx.time_zone);
    let tz = ctx.time_zone.name();
    let (doctor, center, address) = match ctx.lang {
        Lang::Es => (
            ctx.doctor_name.clone().unwrap_or_else(|| "su médico".into()),
            ctx.center_name.clone().unwrap_or_else(|| "el centro".into()),
            ctx.center_address.clone().unwrap_or_default(),
        ),
        Lang::En => (
            ctx.doctor_name.clone().unwrap_or_else(|| "your doctor".into()),
            ctx.center_name.clone().unwrap_or_else(|| "the center".into()),
            ctx.center_address.clone().unwrap_or_default(),
        ),
    };
    let reason = reason_text(event.reason_code.as_deref(), ctx.lang);
    let name = &ctx.patient_name;
    let place = if address.is_empty() { center.clone() } else { format!("{center} ({address})") };

    let (subject, body, sms) = match (event.kind, ctx.lang) {
        (BookingEventKind::Confirmed, Lang::Es) => (
            format!("Cita confirmada: {when}"),
            format!("Su cita con {doctor} en {place} está confirmada para el {when} (hora de {tz})."),
            format!("Cita confirmada con {doctor} en {center} el {when_short}."),
        ),
        (BookingEventKind::Confirmed, Lang::En) => (
            format!("Appointment confirmed: {when}"),
            format!("Your appointment with {doctor} at {place} is confirmed for {when} ({tz} time)."),
            format!("Appointment confirmed with {doctor} at {center} on {when_short}."),
        ),
        (BookingEventKind::Rescheduled, Lang::Es) => (
            format!("Cita cambiada: {when}"),
            format!("Su cita con {doctor} en {place} se ha cambiado al {when} (hora de {tz})."),
            format!("Su cita con {doctor} en {center} se ha cambiado al {when_short}."),
        ),
        (BookingEventKind::Rescheduled, Lang::En) => (
            format!("Appointment moved: {when}"),
            format!("Your appointment with {doctor} at {place} was moved to {when} ({tz} time)."),
            format!("Your appointment with {doctor} at {center} was moved to {when_short}."),
        ),
        (BookingEventKind::Rejected, Lang::Es) => (
            "No hemos podido confirmar su cita".to_string(),
            format!("No hemos podido confirmar su cita con {doctor} en {place} para el {when}: {reason}."),
            format!("No pudimos confirmar su cita del {when_short} en {center}: {reason}."),
        ),
        (BookingEventKind::Rejected, Lang::En) => (
            "We could not confirm your appointment".to_string(),
            format!("We could not confirm your appointment with {doctor} at {place} on {when}: {reason}."),
            format!("We could not confirm your appointment on {when_short} at {center}: {reason}."),
        ),
        (BookingEventKind::Cancelled, Lang::Es) => (
            format!("Cita cancelada: {when}"),
            format!("Su cita con {doctor} en {place} del {when} ha sido cancelada: {reason}."),
            format!("Su cita del {when_short} en {center} ha sido cancelada."),
        ),
        (BookingEventKind::Cancelled, Lang::En) => (
            format!("Appointment cancelled: {when}"),
            format!("Your appointment with {doctor} at {place} on {when} was cancelled: {reason}."),
            format!("Your appointment on {when_short} at {center} was cancelled."),
        ),
    };
    let (greeting, closing) = match ctx.lang {
        Lang::Es => (format!("Hola, {name}:"), "Un saludo,\nCitaflow"),
        Lang::En => (format!("Hello {name},"), "Kind regards,\nCitaflow"),
    };
    let text = format!("{greeting}\n\n{body}\n\n{closing}\n");
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject_html}</title></head>\
         <body><p>{greeting_html}</p><p>{body_html}</p><p>{closing_html}</p></body></html>",
        lang = if ctx.lang == Lang::Es { "es" } else { "en" },
        subject_html = html_escape(&subject),
        greeting_html = html_escape(&greeting),
        body_html = html_escape(&body),
        closing_html = html_escape(closing).replace('\n', "<br>"),
    );
    let ics = matches!(event.kind, BookingEventKind::Confirmed | BookingEventKind::Rescheduled)
        .then(|| {
            let summary = match ctx.lang {
                Lang::Es => format!("Cita con {doctor}"),
                Lang::En => format!("Appointment with {doctor}"),
            };
            ics(&event.booking_id, starts_at, ends_at, now, &summary, &place)
        });
    Rendered { subject, text, html, sms: fit_sms(&format!("Citaflow: {sms}")), ics }
}

fn ics_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n")
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

/// A single-event iCalendar file (RFC 5545) calendar apps import.
pub fn ics(
    booking_id: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    summary: &str,
    location: &str,
) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let lines = [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Citaflow//Bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{booking_id}@citaflow"),
        format!("DTSTAMP:{}", stamp(now)),
        format!("DTSTART:{}", stamp(starts_at)),
        format!("DTEND:{}", stamp(ends_at)),
        format!("SUMMARY:{}", ics_escape(summary)),
        format!("LOCATION:{}", ics_escape(location)),
        "STATUS:CONFIRMED".to_string(),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ];
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

    fn event(kind: BookingEventKind, reason: Option<&str>) -> BookingEvent {
        BookingEvent {
            event_id: "e".into(),
            kind,
            booking_id: "4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f".into(),
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
            occurred_at: 0,
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
        }
    }

    #[test]
    fn confirmed_in_spanish_uses_the_center_time_zone() {
        let r = render(&event(BookingEventKind::Confirmed, None), &ctx(Lang::Es), Utc::now());
        assert_eq!(r.subject, "Cita confirmada: martes, 1 de diciembre de 2026, 10:30");
        assert!(r.text.contains("Calle Mayor 1, Madrid"));
        assert!(r.html.contains("Lucía &lt;Pérez&gt;"), "names are escaped in HTML");
        let ics = r.ics.expect("confirmed has an ics");
        assert!(ics.contains("DTSTART:20261201T093000Z\r\n"));
        assert!(ics.contains("LOCATION:Clínica Centro (Calle Mayor 1\\, Madrid)"));
        assert!(ics.contains("UID:4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f@citaflow"));
    }

    #[test]
    fn rejected_in_english_explains_the_reason_without_ics() {
        let r = render(&event(BookingEventKind::Rejected, Some("slot_taken")), &ctx(Lang::En), Utc::now());
        assert!(r.text.contains("the doctor already has an appointment at that time"));
        assert!(r.ics.is_none());
        assert!(r.sms.starts_with("Citaflow: We could not confirm"));
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
                let r = render(&event(kind, Some("rescheduled")), &ctx(lang), Utc::now());
                assert!(!r.subject.is_empty() && r.sms.chars().count() <= SMS_MAX_CHARS);
            }
        }
    }

    #[test]
    fn ics_lines_are_folded_at_75_octets() {
        let long = "x".repeat(200);
        let ics = ics("id", Utc::now(), Utc::now(), Utc::now(), &long, "here");
        assert!(ics.split("\r\n").all(|line| line.len() <= 75));
        assert!(ics.contains("\r\n x"));
    }

    #[test]
    fn sms_text_stays_in_gsm7_and_two_segments() {
        let s = fit_sms("Cita confirmada con el Dr. Núñez en Clínica Óptima, día miércoles");
        assert_eq!(s, "Cita confirmada con el Dr. Nuñez en Clinica Optima, dia miércoles");
        let long = fit_sms(&"a".repeat(500));
        assert_eq!(long.chars().count(), SMS_MAX_CHARS);
        assert!(long.ends_with("..."));
    }
}
