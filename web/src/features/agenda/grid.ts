// The agenda grid, apart from React: which rows a day has, which cells are working time (the
// weekly hours, less time off, plus extra openings), and which bookings and free slots fall in
// each cell, all in the center's own clock.
import type { Schemas } from "../../lib/api/client";
import { localDate, localMinutes } from "../../lib/time";

export type Hours = Schemas["WorkingHours"];
export type Booking = Schemas["Booking"];
export type FreeSlot = Schemas["FreeSlot"];
/** A day off, part of a day off, or an extra opening, on a local date of the center. */
export type Exception = Schemas["AgendaException"];

export const STEP = 30;
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;

/** The weekday of a local date (`YYYY-MM-DD`). */
export function weekday(date: string): Hours["weekday"] {
  const d = new Date(`${date}T12:00:00Z`);
  return WEEKDAYS[(d.getUTCDay() + 6) % 7]!;
}

export const minutesOf = (hhmm: string) => {
  const [h, m] = hhmm.split(":").map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
};

export const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

function applies(h: Hours, date: string): boolean {
  return h.weekday === weekday(date) && (!h.valid_from || h.valid_from <= date) && (!h.valid_until || date <= h.valid_until);
}

/** Row starts (minutes after midnight) of a day: the span of its working hours and of the
 * bookings on it, in STEP-minute rows; none when nobody works and nothing is booked. */
export function rows(date: string, hours: Hours[], bookings: Booking[], timeZone: string, exceptions: Exception[] = []): number[] {
  let from = Infinity;
  let to = -Infinity;
  const spans = [
    ...hours.filter((h) => applies(h, date)),
    ...exceptions.filter((e) => e.kind === "extra" && e.date === date && e.start && e.end),
  ] as { start: string; end: string }[];
  for (const h of spans) {
    from = Math.min(from, minutesOf(h.start));
    to = Math.max(to, minutesOf(h.end));
  }
  for (const b of bookings) {
    if (localDate(b.starts_at, timeZone) !== date) continue;
    const start = localMinutes(b.starts_at, timeZone);
    from = Math.min(from, start);
    to = Math.max(to, start + STEP);
  }
  if (!Number.isFinite(from)) return [];
  const out = [];
  for (let m = Math.floor(from / STEP) * STEP; m < to; m += STEP) out.push(m);
  return out;
}

/** Whether the doctor works in the row starting at `minute` of `date`: time off (the whole day
 * when it has no times) wins over an extra opening, which wins over the weekly hours — as the
 * API's free-slot search decides. `exceptions` are those that apply at the center shown. */
export function working(date: string, minute: number, doctorId: string, hours: Hours[], exceptions: Exception[] = []): boolean {
  const inside = (r: { start?: string | null; end?: string | null }) =>
    !r.start || !r.end || (minutesOf(r.start) <= minute && minute < minutesOf(r.end));
  const today = exceptions.filter((e) => e.doctor_id === doctorId && e.date === date);
  if (today.some((e) => e.kind === "time_off" && inside(e))) return false;
  if (today.some((e) => e.kind === "extra" && e.start && e.end && inside(e))) return true;
  return hours.some((h) => h.doctor_id === doctorId && applies(h, date) && inside(h));
}

/** What starts in one cell. */
export function inCell<T extends { doctor_id: string }>(
  items: T[],
  startOf: (item: T) => string,
  date: string,
  minute: number,
  doctorId: string,
  timeZone: string,
): T[] {
  return items.filter((item) => {
    if (item.doctor_id !== doctorId) return false;
    const start = startOf(item);
    if (localDate(start, timeZone) !== date) return false;
    const m = localMinutes(start, timeZone);
    return minute <= m && m < minute + STEP;
  });
}

/** Bookings that hold time in the agenda (not cancelled or rejected). */
export const holding = (b: Booking) => b.status === "confirmed" || b.status === "pending";
