// The agenda files of the initial load (doctor_services.csv, working_hours.csv,
// agenda_exceptions.csv), in the browser: their rows name directory records by key (doctor
// usernames, center and service names), looked up here to ids; and a second load adds nothing
// where the API has no natural key to refuse a repeat (the same rules as `citaflow import`):
//
// - offers are set per service with PUT /services/{id}/doctors, the service's current doctors
//   plus the file's, so a load only adds offers and one already there is "already present";
// - a working-hours range refused with 409 `hours_overlap` is "already present" when the very
//   same range is among the doctor's hours, and a bad row otherwise;
// - exceptions are compared with the doctor's exceptions on those dates before sending.
import { normalise, type Record, spec } from "./csv";

/** The directory's ids by the keys the files use, compared as the API does (case-insensitive). */
export interface Lookup {
  doctors: Map<string, string>;
  centers: Map<string, string>;
  services: Map<string, { id: string; doctorIds: string[] }>;
}

interface Named {
  id: string;
  name: string;
}

/** The lookup tables from the API's lists. Doctor records carry no username: they are matched
 * to their users (`GET /users?role=doctor`) by `user_id`. */
export function lookupFrom(
  users: { id: string; username: string }[],
  doctors: { id: string; user_id?: string | null }[],
  centers: Named[],
  services: (Named & { doctor_ids: string[] })[],
): Lookup {
  const usernames = new Map(users.map((u) => [u.id, key(u.username)]));
  const doctorIds = new Map<string, string>();
  for (const d of doctors) {
    const username = d.user_id ? usernames.get(d.user_id) : undefined;
    if (username) doctorIds.set(username, d.id);
  }
  return {
    doctors: doctorIds,
    centers: new Map(centers.map((c) => [key(c.name), c.id])),
    services: new Map(services.map((s) => [key(s.name), { id: s.id, doctorIds: [...s.doctor_ids] }])),
  };
}

const key = (name: string) => name.trim().toLowerCase();

/** A row ready to send, or why it cannot be (a reference that matches nothing). */
export type Prepared = { item: { [field: string]: string } } | { bad: string };

function doctorOf(record: Record, lookup: Lookup): string | { bad: string } {
  const username = record.cells.get("doctor") ?? "";
  return lookup.doctors.get(key(username)) ?? { bad: `doctor: no doctor has the username "${username}"` };
}

/** The item of a working_hours.csv or agenda_exceptions.csv row, references looked up.
 * Required cells are always sent (empty when missing, so the API names the field); empty
 * optional cells are left out; weekday and kind lower-cased. */
export function prepare(kind: "working_hours" | "agenda_exceptions", record: Record, lookup: Lookup): Prepared {
  const doctor = doctorOf(record, lookup);
  if (typeof doctor !== "string") return doctor;
  const item: { [field: string]: string } = { doctor_id: doctor };
  for (const column of spec(kind).columns) {
    const value = record.cells.get(column.name) ?? "";
    if (column.name === "doctor" || (!value && !column.required)) continue;
    if (column.name === "center") {
      const center = value ? lookup.centers.get(key(value)) : "";
      if (center === undefined) return { bad: `center: no center is called "${value}"` };
      item.center_id = center;
    } else item[column.name] = column.name === "weekday" || column.name === "kind" ? value.toLowerCase() : value;
  }
  return { item };
}

/** What makes a working-hours range the same range (the item's and the record's field names). */
export const HOURS_FIELDS = ["doctor_id", "center_id", "weekday", "start", "end", "valid_from", "valid_until"];
/** What makes an exception the same exception (its note is a comment, not compared). */
export const EXCEPTION_FIELDS = ["doctor_id", "kind", "date", "center_id", "start", "end"];

/** The identity of an item or record over `fields`, normalised as the API stores values:
 * dates as YYYY-MM-DD, times as HH:MM, text in lower case, absent and null alike. */
export function identity(value: { [field: string]: unknown }, fields: readonly string[]): string {
  return fields.map((f) => normalise(typeof value[f] === "string" ? (value[f] as string) : "")).join("\u0001");
}

/** Sorted distinct dates (YYYY-MM-DD) grouped into [from, to] windows of at most `days` days,
 * so each doctor's exceptions are read in a few list calls. */
export function windows(dates: string[], days: number): [string, string][] {
  const sorted = [...new Set(dates)].sort();
  const out: [string, string][] = [];
  const day = (d: string) => Date.parse(`${d}T00:00:00Z`) / 86_400_000;
  for (const date of sorted) {
    const last = out[out.length - 1];
    if (last && day(date) - day(last[0]) < days) last[1] = date;
    else out.push([date, date]);
  }
  return out;
}

/** One PUT /services/{id}/doctors: the service's doctors after the load, and the rows (by
 * index) that add a doctor. */
export interface OfferPlan {
  serviceId: string;
  doctorIds: string[];
  adds: number[];
}

/** Outcome of a row known without sending it. */
export type Known = "existing" | { bad: string };

/** Groups doctor_services.csv by service: each row's outcome when it is known without sending
 * (a reference matches nothing, or the doctor already offers the service), and the PUTs for
 * the rest. Offers are only added: a service's current doctors stay. */
export function planOffers(records: Record[], lookup: Lookup): { known: (Known | null)[]; plans: OfferPlan[] } {
  const known: (Known | null)[] = records.map(() => null);
  const plans = new Map<string, OfferPlan>();
  records.forEach((record, index) => {
    const doctor = doctorOf(record, lookup);
    const name = record.cells.get("service") ?? "";
    const service = lookup.services.get(key(name));
    if (typeof doctor !== "string") known[index] = doctor;
    else if (!service) known[index] = { bad: `service: no service is called "${name}"` };
    else if (service.doctorIds.includes(doctor)) known[index] = "existing";
    else {
      let plan = plans.get(service.id);
      if (!plan) plans.set(service.id, (plan = { serviceId: service.id, doctorIds: [...service.doctorIds], adds: [] }));
      plan.doctorIds.push(doctor);
      plan.adds.push(index);
    }
  });
  return { known, plans: [...plans.values()] };
}
