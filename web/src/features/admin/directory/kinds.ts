// The directory's kinds of record (centers, doctors, patients, users, services), each as a
// small config: its API calls, list columns and form fields, typed from the generated schema
// (a field name that is not in the API's create or update body fails `tsc`). The list, the
// form and the record page are one generic component each (DirectoryPages.tsx).
import { api, must, type Schemas } from "../../../lib/api/client";
import { type Key, type Lang, translate } from "../../../lib/i18n";
import { formatShortDate, localDate } from "../../../lib/time";
import type { FieldSpec } from "./form";

export const KINDS = ["centers", "doctors", "patients", "users", "services"] as const;
export type KindName = (typeof KINDS)[number];

export interface Row {
  id: string;
}

export interface Page<R> {
  items: R[];
  page: number;
  per_page: number;
  total: number;
}

export interface ListQuery {
  q?: string;
  active?: boolean;
  page: number;
  per_page: number;
}

export interface Column<R> {
  label: Key;
  value(row: R, lang: Lang): string;
}

type Body = Record<string, unknown>;

/** A field of a kind's create or update body. */
type FieldOf<New, Update> = FieldSpec<Extract<keyof New | keyof Update, string>>;

export interface Kind<R extends Row = Row> {
  name: KindName;
  /** The list's title (plural), one record's word, and the "new" button. */
  title: Key;
  one: Key;
  add: Key;
  label(row: R): string;
  active(row: R): boolean;
  columns: Column<R>[];
  fields: FieldSpec[];
  list(query: ListQuery): Promise<Page<R>>;
  get(id: string): Promise<R>;
  create(body: Body): Promise<R>;
  update(id: string, body: Body): Promise<R>;
  /** Deactivate (`false`, through the API's deactivate route where it has one) or activate. */
  setActive(id: string, active: boolean): Promise<R>;
}

const id = (value: string) => ({ params: { path: { id: value } } });
/** When a record was made, as a date where the admin is. */
const created = (row: { created_at: string }, lang: Lang) =>
  formatShortDate(localDate(row.created_at, Intl.DateTimeFormat().resolvedOptions().timeZone), lang);
const languages = [
  { value: "", label: "languageDefault" },
  { value: "es", label: "Español" },
  { value: "en", label: "English" },
] as const;

let zones: readonly string[] | null = null;
/** The IANA time zones the browser knows, for the center form's suggestions. */
function timeZones(): readonly string[] {
  zones ??= typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return zones;
}

const centerFields: FieldOf<Schemas["NewCenter"], Schemas["CenterUpdate"]>[] = [
  { name: "name", label: "dirName", required: true, maxLength: 200 },
  { name: "address", label: "address", required: true, maxLength: 300 },
  { name: "timezone", label: "timeZone", required: true, hint: "timeZoneHint", suggestions: timeZones },
  { name: "language", label: "centerLanguage", input: "select", options: languages },
  { name: "reminder_offsets_minutes", label: "reminderOffsets", input: "minutes", hint: "reminderOffsetsHint" },
];

const centers: Kind<Schemas["Center"]> = {
  name: "centers",
  title: "dirCenters",
  one: "center",
  add: "newCenter",
  label: (c) => c.name,
  active: (c) => c.active,
  columns: [
    { label: "address", value: (c) => c.address },
    { label: "timeZone", value: (c) => c.timezone },
  ],
  fields: centerFields,
  list: (query) => must(api.GET("/centers", { params: { query } })),
  get: (v) => must(api.GET("/centers/{id}", id(v))),
  create: (body) => must(api.POST("/centers", { body: body as Schemas["NewCenter"] })),
  update: (v, body) => must(api.PATCH("/centers/{id}", { ...id(v), body: body as Schemas["CenterUpdate"] })),
  setActive: (v, active) =>
    active ? must(api.PATCH("/centers/{id}", { ...id(v), body: { active } })) : must(api.POST("/centers/{id}/deactivate", id(v))),
};

const doctorFields: FieldOf<Schemas["NewDoctor"], Schemas["DoctorUpdate"]>[] = [
  { name: "name", label: "dirName", required: true, maxLength: 200 },
  { name: "specialty", label: "specialty", required: true, maxLength: 200 },
  { name: "username", label: "loginName", hint: "loginNameHint", only: "create" },
  { name: "password", label: "password", input: "password", hint: "passwordHint", only: "create" },
];

const doctors: Kind<Schemas["Doctor"]> = {
  name: "doctors",
  title: "dirDoctors",
  one: "doctor",
  add: "newDoctor",
  label: (d) => d.name,
  active: (d) => d.active,
  columns: [{ label: "specialty", value: (d) => d.specialty }],
  fields: doctorFields,
  list: (query) => must(api.GET("/doctors", { params: { query } })),
  get: (v) => must(api.GET("/doctors/{id}", id(v))),
  create: (body) => must(api.POST("/doctors", { body: body as Schemas["NewDoctor"] })),
  update: (v, body) => must(api.PATCH("/doctors/{id}", { ...id(v), body: body as Schemas["DoctorUpdate"] })),
  setActive: (v, active) =>
    active ? must(api.PATCH("/doctors/{id}", { ...id(v), body: { active } })) : must(api.POST("/doctors/{id}/deactivate", id(v))),
};

const patientFields: FieldOf<Schemas["NewPatient"], Schemas["PatientUpdate"]>[] = [
  { name: "name", label: "dirName", required: true, maxLength: 200 },
  { name: "email", label: "email", input: "email" },
  { name: "phone", label: "phone", input: "tel", hint: "phoneHint" },
  { name: "language", label: "preferredLanguage", input: "select", options: languages },
  { name: "username", label: "loginName", hint: "patientLoginHint", only: "create" },
  { name: "password", label: "password", input: "password", hint: "passwordHint", only: "create" },
];

const patients: Kind<Schemas["Patient"]> = {
  name: "patients",
  title: "dirPatients",
  one: "patient",
  add: "newPatient",
  label: (p) => p.name,
  active: (p) => p.status === "ACTIVE",
  columns: [
    { label: "email", value: (p) => p.email ?? "" },
    { label: "phone", value: (p) => p.phone ?? "" },
  ],
  fields: patientFields,
  // The patients' filter is their status, not `active`.
  list: ({ active, ...query }) =>
    must(api.GET("/patients", { params: { query: { ...query, status: active === undefined ? undefined : active ? "ACTIVE" : "INACTIVE" } } })),
  get: (v) => must(api.GET("/patients/{id}", id(v))),
  create: (body) => must(api.POST("/patients", { body: body as Schemas["NewPatient"] })),
  update: (v, body) => must(api.PATCH("/patients/{id}", { ...id(v), body: body as Schemas["PatientUpdate"] })),
  setActive: (v, active) =>
    active
      ? must(api.PATCH("/patients/{id}", { ...id(v), body: { status: "ACTIVE" } }))
      : must(api.POST("/patients/{id}/deactivate", id(v))),
};

const userFields: FieldOf<Schemas["NewUser"], Schemas["UserUpdate"]>[] = [
  { name: "username", label: "loginName", required: true },
  { name: "password", label: "password", input: "password", hint: "passwordHint", required: true, only: "create" },
  {
    name: "role",
    label: "role",
    input: "select",
    required: true,
    only: "create",
    options: [
      { value: "secretary", label: "role_secretary" },
      { value: "admin", label: "role_admin" },
    ],
  },
];

const users: Kind<Schemas["User"]> = {
  name: "users",
  title: "dirUsers",
  one: "user",
  add: "newUser",
  label: (u) => u.username,
  active: (u) => u.active,
  columns: [
    { label: "role", value: (u, lang) => translate(lang, `role_${u.role}`) },
    { label: "since", value: created },
  ],
  fields: userFields,
  list: (query) => must(api.GET("/users", { params: { query } })),
  get: (v) => must(api.GET("/users/{id}", id(v))),
  create: (body) => must(api.POST("/users", { body: body as Schemas["NewUser"] })),
  update: (v, body) => must(api.PATCH("/users/{id}", { ...id(v), body: body as Schemas["UserUpdate"] })),
  setActive: (v, active) =>
    active ? must(api.PATCH("/users/{id}", { ...id(v), body: { active } })) : must(api.POST("/users/{id}/deactivate", id(v))),
};

const serviceFields: FieldOf<Schemas["NewService"], Schemas["ServiceUpdate"]>[] = [
  { name: "name", label: "dirName", required: true, maxLength: 200 },
  { name: "duration_minutes", label: "durationMinutes", input: "number", required: true },
  { name: "buffer_before_minutes", label: "bufferBefore", input: "number", hint: "bufferHint" },
  { name: "buffer_after_minutes", label: "bufferAfter", input: "number", hint: "bufferHint" },
];

const services: Kind<Schemas["Service"]> = {
  name: "services",
  title: "dirServices",
  one: "service",
  add: "newService",
  label: (s) => s.name,
  active: (s) => s.active,
  columns: [
    { label: "durationMinutes", value: (s) => String(s.duration_minutes) },
    { label: "doctorsCount", value: (s) => String(s.doctor_ids.length) },
  ],
  fields: serviceFields,
  list: (query) => must(api.GET("/services", { params: { query } })),
  get: (v) => must(api.GET("/services/{id}", id(v))),
  create: (body) => must(api.POST("/services", { body: body as Schemas["NewService"] })),
  update: (v, body) => must(api.PATCH("/services/{id}", { ...id(v), body: body as Schemas["ServiceUpdate"] })),
  // Services have no deactivate route: `active` is a field of their update.
  setActive: (v, active) => must(api.PATCH("/services/{id}", { ...id(v), body: { active } })),
};

export const kinds: { [K in KindName]: Kind<Row> } = { centers, doctors, patients, users, services };

export function isKind(name: string | undefined): name is KindName {
  return (KINDS as readonly string[]).includes(name ?? "");
}
