// API errors in words: known codes in the user's language, any other with the API's own
// (English) message, which the API writes for people.
import { ApiProblem } from "./api/client";
import type { Lang } from "./i18n";

const known: Record<string, Record<Lang, string>> = {
  network: { es: "No hay conexión con el servidor. Inténtalo de nuevo.", en: "Cannot reach the server. Please try again." },
  unauthorized: { es: "Usuario o contraseña incorrectos.", en: "Wrong username or password." },
  too_many_requests: {
    es: "Demasiados intentos. Espera un momento y vuelve a probar.",
    en: "Too many attempts. Wait a moment and try again.",
  },
  forbidden: { es: "No tienes permiso para hacer esto.", en: "You are not allowed to do this." },
  not_found: { es: "No lo encontramos.", en: "Not found." },
  duplicate: { es: "Ya existe una cuenta con estos datos.", en: "An account with these details already exists." },
  too_many_bookings: {
    es: "Ya tienes el máximo de citas futuras permitido.",
    en: "You already hold the most future appointments allowed.",
  },
  hold_lapsed: {
    es: "El tiempo que te guardábamos esta hora ha terminado; ya se ofrece al siguiente paciente.",
    en: "The time we held this slot for you has run out; it is being offered to the next patient.",
  },
  offer_closed: { es: "Esta oferta ya no se puede aceptar.", en: "This offer can no longer be taken." },
  already_waiting: {
    es: "Ya estás en la lista de espera de este servicio, centro y médico en esas fechas.",
    en: "You are already on the waitlist for this service, center and doctor on those dates.",
  },
  too_many_entries: { es: "Estás en demasiadas listas de espera a la vez.", en: "You are on too many waitlists at once." },
  unavailable: { es: "El servicio no está disponible ahora mismo. Inténtalo en unos segundos.", en: "The service is unavailable right now. Try again in a few seconds." },
};

const fields: Record<string, Record<Lang, string>> = {
  name: { es: "Nombre", en: "Name" },
  email: { es: "Email", en: "Email" },
  phone: { es: "Teléfono", en: "Phone" },
  password: { es: "Contraseña", en: "Password" },
  language: { es: "Idioma", en: "Language" },
  start: { es: "Hora", en: "Time" },
  username: { es: "Usuario", en: "Username" },
  from: { es: "Desde", en: "From" },
  to: { es: "Hasta", en: "Until" },
  address: { es: "Dirección", en: "Address" },
  timezone: { es: "Zona horaria", en: "Time zone" },
  specialty: { es: "Especialidad", en: "Specialty" },
  duration_minutes: { es: "Duración", en: "Length" },
  buffer_before_minutes: { es: "Margen antes", en: "Buffer before" },
  buffer_after_minutes: { es: "Margen después", en: "Buffer after" },
  center_id: { es: "Centro", en: "Center" },
  weekday: { es: "Día de la semana", en: "Weekday" },
  end: { es: "Hasta", en: "Until" },
  date: { es: "Día", en: "Day" },
  valid_from: { es: "Válido desde", en: "Valid from" },
  valid_until: { es: "Válido hasta", en: "Valid until" },
};

/** A message for a failed call; validation errors list each field with the API's reason. */
export function describe(error: unknown, lang: Lang): string {
  if (!(error instanceof ApiProblem)) return lang === "es" ? "Algo ha fallado. Inténtalo de nuevo." : "Something went wrong. Please try again.";
  const word = known[error.code]?.[lang];
  const details = error.body?.error.details;
  if (error.code === "validation_failed" && Array.isArray(details) && details.length > 0) {
    return details
      .map((d) => {
        const detail = d as { field?: string; message?: string };
        const field = detail.field ? (fields[detail.field]?.[lang] ?? detail.field) : "";
        return field ? `${field}: ${detail.message ?? ""}` : (detail.message ?? "");
      })
      .join(" · ");
  }
  return word ?? error.message;
}
