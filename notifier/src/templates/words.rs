//! The words around a message, in each language side by side: what stands for an unknown
//! doctor or center, the greeting and closing, and the calendar entry's words.

use super::Lang;

impl Lang {
    /// The language's code (the HTML document's `lang`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }
}

/// What stands for an unknown doctor and an unknown center.
pub(super) fn doctor_and_center(
    lang: Lang,
    doctor: Option<&str>,
    center: Option<&str>,
) -> (String, String) {
    let (your_doctor, the_center) = match lang {
        Lang::Es => ("su médico", "el centro"),
        Lang::En => ("your doctor", "the center"),
    };
    (
        doctor.unwrap_or(your_doctor).to_owned(),
        center.unwrap_or(the_center).to_owned(),
    )
}

/// The greeting (with the patient's name) and the closing of an email.
pub(super) fn greeting_and_closing(lang: Lang, name: &str) -> (String, &'static str) {
    match lang {
        Lang::Es => (format!("Hola, {name}:"), "Un saludo,\nCitaflow"),
        Lang::En => (format!("Hello {name},"), "Kind regards,\nCitaflow"),
    }
}

/// The calendar entry's summary and description, and the attachment's file name.
pub(super) fn calendar(lang: Lang, doctor: &str, place: &str) -> (String, String, &'static str) {
    match lang {
        Lang::Es => (
            format!("Cita con {doctor}"),
            format!("Cita con {doctor} en {place}."),
            "cita.ics",
        ),
        Lang::En => (
            format!("Appointment with {doctor}"),
            format!("Appointment with {doctor} at {place}."),
            "appointment.ics",
        ),
    }
}
