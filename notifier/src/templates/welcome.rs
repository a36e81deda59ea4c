//! The welcome email of a patient who signed up in the web app.

use super::{Lang, Rendered, body, words};

/// Subject, text and HTML of the welcome email (no SMS, no calendar part).
pub fn welcome(lang: Lang, patient_name: &str) -> Rendered {
    let (subject, paragraphs): (&str, Vec<String>) = match lang {
        Lang::Es => (
            "Bienvenida a Citaflow",
            vec![
                "Su cuenta de paciente está lista. Desde la web puede pedir cita con el servicio, el centro y el médico que prefiera, y ver, cambiar o anular sus citas.".into(),
                "Le enviaremos la confirmación de cada cita y un recordatorio antes de la visita.".into(),
            ],
        ),
        Lang::En => (
            "Welcome to Citaflow",
            vec![
                "Your patient account is ready. On the web you can book with the service, center and doctor you prefer, and see, move or cancel your appointments.".into(),
                "We will send you the confirmation of each appointment and a reminder before the visit.".into(),
            ],
        ),
    };
    let (greeting, closing) = words::greeting_and_closing(lang, patient_name);
    let (text, html) = body::bodies(
        lang.code(),
        "Citaflow",
        "Citaflow",
        subject,
        &greeting,
        &paragraphs,
        None,
        closing,
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
        sms: String::new(),
        ics: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name_in_each_language_and_escapes_the_html() {
        let es = welcome(Lang::Es, "Lucía <Pérez>");
        assert_eq!(es.subject, "Bienvenida a Citaflow");
        assert!(es.text.starts_with("Hola, Lucía <Pérez>:"));
        assert!(es.html.contains("Lucía &lt;Pérez&gt;") && !es.html.contains("<Pérez>"));
        let en = welcome(Lang::En, "Ann");
        assert_eq!(en.subject, "Welcome to Citaflow");
        assert!(en.text.contains("Your patient account is ready"));
        assert!(en.ics.is_none());
    }
}
