//! What each kind of event says: the subject, the body's paragraphs and the SMS, for every
//! event kind in both languages, side by side so that a change to one is seen in the other.

use citaflow_schemas::BookingEventKind;

use super::{Facts, Lang, reasons::old_appointment_kept};

/// The words of one event in one language (the SMS without its `Citaflow: ` prefix).
pub(super) struct Message {
    pub subject: String,
    pub paragraphs: Vec<String>,
    pub sms: String,
}

/// The message of `kind` in `lang`; none for the kinds patients are not told about
/// (`super::tells_the_patient`).
pub(super) fn message(kind: BookingEventKind, lang: Lang, facts: &Facts<'_>) -> Option<Message> {
    let Facts {
        when,
        when_range,
        when_short,
        old,
        city,
        doctor,
        center,
        place,
        reason,
        reason_code,
        is_move,
        offer,
    } = facts;
    let (reason_code, is_move) = (*reason_code, *is_move);

    // (subject, body paragraphs, sms)
    let (subject, paragraphs, sms): (String, Vec<String>, String) = match (kind, lang) {
        (
            BookingEventKind::Attended
            | BookingEventKind::NoShow
            | BookingEventKind::WaitlistExpired,
            _,
        ) => return None,
        (BookingEventKind::WaitlistOffered, lang) => {
            let until = offer.as_ref()?;
            match lang {
                Lang::Es => (
                    format!("Se ha liberado una cita: {when}"),
                    vec![
                        format!("Estaba en la lista de espera y se ha liberado una hora con {doctor} en {place}: el {when_range} (hora de {city})."),
                        format!("La guardamos para usted hasta las {until}: resérvela en el enlace de abajo. Si no la quiere, puede rechazarla en la misma página y se ofrecerá al siguiente paciente; seguirá en la lista."),
                    ],
                    format!("Hora libre con {doctor} en {center} el {when_short}. Reservela antes de las {until}:"),
                ),
                Lang::En => (
                    format!("A slot has opened up: {when}"),
                    vec![
                        format!("You are on the waitlist and a time with {doctor} at {place} has become free: {when_range} ({city} time)."),
                        format!("We are holding it for you until {until}: book it with the link below. If you do not want it, you can decline it on the same page and it will be offered to the next patient; you stay on the list."),
                    ],
                    format!("Free slot with {doctor} at {center} on {when_short}. Book it before {until}:"),
                ),
            }
        }
        (BookingEventKind::ReminderDue, Lang::Es) => (
            format!("Recordatorio de su cita: {when}"),
            vec![
                format!("Le recordamos su cita con {doctor} en {place} el {when_range} (hora de {city})."),
                "Si no puede acudir, cancélela o cámbiela cuanto antes para que otro paciente pueda aprovechar la hora.".into(),
            ],
            format!("Recordatorio: cita con {doctor} en {center} el {when_short}."),
        ),
        (BookingEventKind::ReminderDue, Lang::En) => (
            format!("Appointment reminder: {when}"),
            vec![
                format!("This is a reminder of your appointment with {doctor} at {place} on {when_range} ({city} time)."),
                "If you cannot come, please cancel or move it as soon as possible so that another patient can have the time.".into(),
            ],
            format!("Reminder: appointment with {doctor} at {center} on {when_short}."),
        ),
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
    Some(Message {
        subject,
        paragraphs,
        sms,
    })
}
