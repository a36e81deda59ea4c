// The directory's forms as data: which fields a kind has, their values as the form holds them
// (strings), the request body they make (a create sends what was filled in, an edit only what
// changed) and the API's field errors put back on their fields. Pure, so it is unit-tested.
import { ApiProblem } from "../../../lib/api/client";
import type { Key } from "../../../lib/i18n";

export type Input = "text" | "email" | "tel" | "password" | "number" | "minutes" | "date" | "time" | "select" | "pick";

/** The word that stands for an empty list in a `minutes` field (no reminders at all). */
export const NONE = "-";

/** One field of a kind's form; `name` is the request body's (and the record's) field. */
export interface FieldSpec<Name extends string = string> {
  name: Name;
  label: Key;
  input?: Input;
  /** For `select`: the values offered, each with its text (a key, or a text as is). */
  options?: readonly { value: string; label: Key | string }[];
  required?: boolean;
  hint?: Key;
  /** A field of the create form only (a password), or of the edit form only. */
  only?: "create" | "edit";
  maxLength?: number;
  /** Suggestions offered while typing (a datalist), e.g. the time zones. */
  suggestions?: () => readonly string[];
  /** For `pick`: the kind of record chosen (found by a search), and the text for none. */
  pick?: "centers" | "services";
  none?: Key;
}

export type Mode = "create" | "edit";
export type Values = Record<string, string>;

export function fieldsFor<N extends string>(fields: readonly FieldSpec<N>[], mode: Mode): FieldSpec<N>[] {
  return fields.filter((f) => !f.only || f.only === mode);
}

/** The form's starting values: the record's (edit), else empty (create, or a select's first). */
export function initialValues(fields: readonly FieldSpec[], record?: object): Values {
  const from = (record ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    fields.map((f) => {
      const value = from[f.name];
      if (f.input === "minutes" && Array.isArray(value)) return [f.name, value.length ? value.join(", ") : NONE];
      if (value !== undefined && value !== null) return [f.name, String(value)];
      return [f.name, !record && f.input === "select" && f.required ? (f.options?.[0]?.value ?? "") : ""];
    }),
  );
}

function typed(field: FieldSpec, text: string): unknown {
  if (field.input === "minutes") {
    // A list of minutes ("1440, 60"); "-": none; empty: the platform's (null). Anything else
    // is sent as typed, so the API's own error names the field.
    if (text === "") return null;
    if (text === NONE) return [];
    const parts = text.split(/[\s,;]+/).filter(Boolean);
    return parts.every((p) => /^\d+$/.test(p)) ? parts.map(Number) : text;
  }
  if (field.input !== "number") return text;
  const n = Number(text);
  // Not a number: sent as typed, so the API's own error names the field.
  return text !== "" && Number.isFinite(n) ? n : text;
}

/**
 * The request body: trimmed texts, numbers as numbers. A create leaves out optional fields
 * left empty (the API's defaults apply); an edit sends only the fields that changed from
 * `original` (an emptied field is sent empty, so the API says whether it may be).
 */
export function bodyOf(fields: readonly FieldSpec[], values: Values, original?: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const text = field.input === "password" ? (values[field.name] ?? "") : (values[field.name] ?? "").trim();
    if (original) {
      if (text === (original[field.name] ?? "").trim()) continue;
    } else if (text === "" && !field.required) continue;
    body[field.name] = typed(field, text);
  }
  return body;
}

/** The API's reasons by field, for the fields on the form; whatever else is left for the alert. */
export function fieldErrors(error: unknown, names: readonly string[]): { byField: Record<string, string>; others: number } {
  const byField: Record<string, string> = {};
  let others = 0;
  const details = error instanceof ApiProblem && error.code === "validation_failed" ? error.body?.error.details : null;
  if (!Array.isArray(details)) return { byField, others: error ? 1 : 0 };
  for (const d of details) {
    const { field, message } = d as { field?: string; message?: string };
    if (field && names.includes(field)) byField[field] = byField[field] ? `${byField[field]}; ${message ?? ""}` : (message ?? "");
    else others++;
  }
  return { byField, others };
}

/** The list's state as it lives in the address: `?q=…&active=…&page=…`. */
export interface ListState {
  q: string;
  active: "active" | "inactive" | "all";
  page: number;
}

export const PER_PAGE = 20;

export function listState(query: URLSearchParams): ListState {
  const active = query.get("active");
  const page = Number(query.get("page") ?? "1");
  return {
    q: query.get("q") ?? "",
    active: active === "inactive" || active === "all" ? active : "active",
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

export function listHref(base: string, state: ListState): string {
  const query = new URLSearchParams();
  if (state.q.trim()) query.set("q", state.q.trim());
  if (state.active !== "active") query.set("active", state.active);
  if (state.page > 1) query.set("page", String(state.page));
  const text = query.toString();
  return text ? `${base}?${text}` : base;
}

/** `active` as the list endpoints take it: true, false, or no filter. */
export function activeFilter(state: ListState): boolean | undefined {
  return state.active === "all" ? undefined : state.active === "active";
}

export function pageCount(total: number, perPage: number): number {
  return Math.max(1, Math.ceil(total / perPage));
}
