// Spanish and English texts. The language is the user's choice (the switch in the header,
// kept in localStorage), else the browser's when it is English, else Spanish (the clinics'
// default, like the notifier's).
import { useSyncExternalStore } from "react";

export type Lang = "es" | "en";

const es = {
  appName: "Citaflow",
  language: "Idioma",
  skipToContent: "Saltar al contenido",
  login: "Entrar",
  logout: "Salir",
  signup: "Crear cuenta",
  username: "Usuario o email",
  password: "Contraseña",
  passwordHint: "Al menos 10 caracteres.",
  name: "Nombre y apellidos",
  email: "Email",
  phone: "Teléfono móvil",
  phoneHint: "Con prefijo internacional, p. ej. +34600123456.",
  preferredLanguage: "Idioma de los avisos",
  loginTitle: "Entra en Citaflow",
  signupTitle: "Crea tu cuenta de paciente",
  noAccount: "¿No tienes cuenta?",
  haveAccount: "¿Ya tienes cuenta?",
  sessionExpired: "Tu sesión ha caducado. Vuelve a entrar.",
  signedUp: "Cuenta creada. Te hemos enviado un email de bienvenida.",
  loading: "Cargando…",
  navBook: "Pedir cita",
  navAppointments: "Mis citas",
  navAgenda: "Agenda",
  navAdmin: "Administración",
  navLoad: "Carga inicial",
  bookTitle: "Pedir cita",
  rescheduleTitle: "Cambiar la cita",
  service: "Servicio",
  center: "Centro",
  doctor: "Médico",
  anyDoctor: "Cualquier médico",
  day: "Día",
  chooseService: "Elige un servicio",
  chooseCenter: "Elige un centro",
  freeSlots: "Horas libres",
  noSlots: "No hay horas libres este día. Prueba otro día.",
  minutes: "min",
  timesIn: "Horas en {zone}",
  confirmTitle: "Confirma tu cita",
  confirm: "Confirmar",
  back: "Atrás",
  reason: "Motivo (opcional)",
  booking: "Reservando…",
  confirmed: "Cita confirmada",
  slotTaken: "Esa hora acaba de ocuparse. Elige otra:",
  nextSlots: "Próximas horas libres",
  rejected: "No se pudo reservar: {reason}",
  pendingStill: "Tu solicitud sigue en curso; la verás en Mis citas en cuanto se decida.",
  upcoming: "Próximas",
  past: "Pasadas y anuladas",
  noUpcoming: "No tienes citas próximas.",
  noPast: "No tienes citas pasadas ni anuladas.",
  details: "Ver",
  cancel: "Anular la cita",
  cancelConfirm: "¿Anular esta cita?",
  cancelled: "Cita anulada",
  reschedule: "Cambiar de hora",
  rescheduled: "Cita cambiada",
  keepOld: "Tu cita anterior se mantiene.",
  status: "Estado",
  status_pending: "Pendiente",
  status_confirmed: "Confirmada",
  status_rejected: "Rechazada",
  status_cancelled: "Anulada",
  attended: "Acudió",
  no_show: "No acudió",
  appointment: "Cita",
  when: "Cuándo",
  where: "Dónde",
  notFound: "No encontramos esta página o esta cita.",
  agendaTitle: "Agenda",
  week: "Semana",
  dayView: "Día",
  previous: "Anterior",
  next: "Siguiente",
  today: "Hoy",
  free: "Libre",
  bookFor: "Reservar para un paciente",
  patient: "Paciente",
  moveHint: "Elige una hora libre para mover la cita.",
  closed: "Nadie trabaja este día.",
  agendaLive: "La agenda se actualiza sola cada {seconds} s.",
  booked: "Cita reservada para {name}",
  noPatients: "Ningún paciente coincide.",
  searchPatient: "Buscar paciente (nombre, email o teléfono)",
  select: "Elegir",
  newPatient: "Nuevo paciente",
  register: "Registrar",
  move: "Mover",
  markAttended: "Acudió",
  markNoShow: "No acudió",
  close: "Cerrar",
  loadTitle: "Carga inicial desde CSV",
  loadIntro: "Elige los ficheros CSV; la página los lee y envía las filas a la API (el servidor nunca recibe un CSV).",
  loadStart: "Cargar",
  progress: "{done} de {total} filas",
  created: "Creadas",
  existing: "Ya existían",
  badRows: "Filas con errores",
  csvFiles: "Ficheros CSV",
  unknownFile: "Fichero desconocido: no se carga",
  rowsWord: "Filas",
  noBadRows: "Carga terminada sin filas con errores.",
  file: "Fichero",
  line: "Línea",
  why: "Motivo",
  error: "Error",
  unknownError: "Algo ha fallado. Inténtalo de nuevo.",
} as const;

export type Key = keyof typeof es;

const en: Record<Key, string> = {
  appName: "Citaflow",
  language: "Language",
  skipToContent: "Skip to content",
  login: "Sign in",
  logout: "Sign out",
  signup: "Create account",
  username: "Username or email",
  password: "Password",
  passwordHint: "At least 10 characters.",
  name: "Full name",
  email: "Email",
  phone: "Mobile phone",
  phoneHint: "With the country code, e.g. +34600123456.",
  preferredLanguage: "Language of messages",
  loginTitle: "Sign in to Citaflow",
  signupTitle: "Create your patient account",
  noAccount: "No account yet?",
  haveAccount: "Already have an account?",
  sessionExpired: "Your session expired. Please sign in again.",
  signedUp: "Account created. We sent you a welcome email.",
  loading: "Loading…",
  navBook: "Book",
  navAppointments: "My appointments",
  navAgenda: "Agenda",
  navAdmin: "Admin",
  navLoad: "Initial load",
  bookTitle: "Book an appointment",
  rescheduleTitle: "Reschedule",
  service: "Service",
  center: "Center",
  doctor: "Doctor",
  anyDoctor: "Any doctor",
  day: "Day",
  chooseService: "Choose a service",
  chooseCenter: "Choose a center",
  freeSlots: "Free times",
  noSlots: "No free times on this day. Try another day.",
  minutes: "min",
  timesIn: "Times in {zone}",
  confirmTitle: "Confirm your appointment",
  confirm: "Confirm",
  back: "Back",
  reason: "Reason (optional)",
  booking: "Booking…",
  confirmed: "Appointment confirmed",
  slotTaken: "That time was just taken. Pick another one:",
  nextSlots: "Next free times",
  rejected: "Could not book: {reason}",
  pendingStill: "Your request is still being decided; it will show in My appointments.",
  upcoming: "Upcoming",
  past: "Past and cancelled",
  noUpcoming: "You have no upcoming appointments.",
  noPast: "You have no past or cancelled appointments.",
  details: "View",
  cancel: "Cancel appointment",
  cancelConfirm: "Cancel this appointment?",
  cancelled: "Appointment cancelled",
  reschedule: "Reschedule",
  rescheduled: "Appointment rescheduled",
  keepOld: "Your earlier appointment is kept.",
  status: "Status",
  status_pending: "Pending",
  status_confirmed: "Confirmed",
  status_rejected: "Rejected",
  status_cancelled: "Cancelled",
  attended: "Attended",
  no_show: "No-show",
  appointment: "Appointment",
  when: "When",
  where: "Where",
  notFound: "We could not find this page or this appointment.",
  agendaTitle: "Agenda",
  week: "Week",
  dayView: "Day",
  previous: "Previous",
  next: "Next",
  today: "Today",
  free: "Free",
  bookFor: "Book for a patient",
  patient: "Patient",
  moveHint: "Pick a free time to move the appointment to.",
  closed: "Nobody works on this day.",
  agendaLive: "The agenda updates itself every {seconds} s.",
  booked: "Appointment booked for {name}",
  noPatients: "No patient matches.",
  searchPatient: "Find a patient (name, email or phone)",
  select: "Select",
  newPatient: "New patient",
  register: "Register",
  move: "Move",
  markAttended: "Attended",
  markNoShow: "No-show",
  close: "Close",
  loadTitle: "Initial load from CSV",
  loadIntro: "Choose the CSV files; the page reads them and sends the rows to the API (the server never receives a CSV).",
  loadStart: "Load",
  progress: "{done} of {total} rows",
  created: "Created",
  existing: "Already there",
  badRows: "Rows with errors",
  csvFiles: "CSV files",
  unknownFile: "Unknown file: not loaded",
  rowsWord: "Rows",
  noBadRows: "Load finished with no bad rows.",
  file: "File",
  line: "Line",
  why: "Reason",
  error: "Error",
  unknownError: "Something went wrong. Please try again.",
};

export const dictionaries: Record<Lang, Record<Key, string>> = { es, en };

const LANG_KEY = "citaflow.lang";
const listeners = new Set<() => void>();

function initial(): Lang {
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "es" || saved === "en") return saved;
  } catch {
    /* no storage: fall through */
  }
  if (typeof navigator !== "undefined" && navigator.language.toLowerCase().startsWith("en")) return "en";
  return "es";
}

let lang: Lang = typeof window === "undefined" ? "es" : initial();

export function getLang(): Lang {
  return lang;
}

export function setLang(next: Lang) {
  lang = next;
  try {
    localStorage.setItem(LANG_KEY, next);
  } catch {
    /* the choice lasts this page only */
  }
  document.documentElement.lang = next;
  for (const listener of listeners) listener();
}

/** `{name}` placeholders replaced by `vars`. */
export function translate(l: Lang, key: Key, vars?: Record<string, string | number>): string {
  let text = dictionaries[l][key];
  for (const [name, value] of Object.entries(vars ?? {})) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export function useLang(): Lang {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => lang,
  );
}

export function useT() {
  const l = useLang();
  return (key: Key, vars?: Record<string, string | number>) => translate(l, key, vars);
}
