//! Why a booking was refused or cancelled, in the patient's words, from the processor's
//! reason codes.

use super::Lang;

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
pub(super) fn old_appointment_kept(code: Option<&str>) -> bool {
    !matches!(
        code,
        Some("previous_not_active" | "previous_not_found" | "previous_other_patient")
    )
}
