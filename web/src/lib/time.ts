// Dates and times in a center's time zone, always through Intl.DateTimeFormat (never by
// slicing strings): a slot at 09:30 in Madrid reads 09:30 whatever the browser's own zone.
import type { Lang } from "./i18n";

const locale = (lang: Lang) => (lang === "es" ? "es-ES" : "en-GB");

export function formatTime(iso: string, timeZone: string, lang: Lang): string {
  return new Intl.DateTimeFormat(locale(lang), { timeZone, hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

export function formatDateTime(iso: string, timeZone: string, lang: Lang): string {
  return new Intl.DateTimeFormat(locale(lang), {
    timeZone,
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  }).format(new Date(iso));
}

/** A local date (`YYYY-MM-DD`, a center's own date) as words, e.g. "lunes, 7 de diciembre". */
export function formatLocalDate(date: string, lang: Lang, withYear = false): string {
  // Noon UTC of that date is the same calendar date in every zone from -11 to +11.
  return new Intl.DateTimeFormat(locale(lang), {
    timeZone: "UTC",
    weekday: "long",
    day: "numeric",
    month: "long",
    ...(withYear ? { year: "numeric" } : {}),
  }).format(new Date(`${date}T12:00:00Z`));
}

/** A local date, short: "mié, 2 dic" / "Wed 2 Dec". */
export function formatShortDate(date: string, lang: Lang): string {
  return new Intl.DateTimeFormat(locale(lang), { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" }).format(
    new Date(`${date}T12:00:00Z`),
  );
}

/** The zone as people read it: "Europe/Madrid (CET)". */
export function zoneLabel(timeZone: string, lang: Lang, at = new Date()): string {
  const part = new Intl.DateTimeFormat(locale(lang), { timeZone, timeZoneName: "short" })
    .formatToParts(at)
    .find((p) => p.type === "timeZoneName")?.value;
  return part ? `${timeZone} (${part})` : timeZone;
}

/** The local date (`YYYY-MM-DD`) of an instant in a zone. */
export function localDate(iso: string | Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(
    typeof iso === "string" ? new Date(iso) : iso,
  );
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Minutes after local midnight of an instant in a zone. */
export function localMinutes(iso: string, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(
    new Date(iso),
  );
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return get("hour") * 60 + get("minute");
}

/** `date` plus `days` (local calendar dates, no zone involved). */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** The Monday of the week of `date`. */
export function mondayOf(date: string): string {
  const d = new Date(`${date}T12:00:00Z`);
  const back = (d.getUTCDay() + 6) % 7;
  return addDays(date, -back);
}
