//! Dates and places as patients read them: the long date (with the end time when it is the
//! same day), the short date of an SMS, and the city a time zone is named after. Always in
//! the center's time zone.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use super::Lang;

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
pub(super) fn long_range(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    tz: Tz,
    lang: Lang,
) -> String {
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
