// The initial load's CSV side, in the browser (the server never receives a CSV): RFC 4180
// parsing with the line each record starts on, the files the page knows and their columns,
// and the bulk item each row becomes (the same rules as `citaflow import`).

export interface Record {
  /** The file's line the record starts on (the header is line 1). */
  line: number;
  cells: Map<string, string>;
}

export interface Parsed {
  header: string[];
  records: Record[];
}

/** Parses CSV text: quoted fields (with "" for a quote, commas and line breaks inside), CRLF
 * or LF; a UTF-8 byte order mark is dropped; empty lines are skipped. */
export function parse(text: string): string[][] & { lines: number[] } {
  const rows: string[][] = [];
  const lines: number[] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const src = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const endRow = () => {
    row.push(field);
    if (!(row.length === 1 && row[0] === "")) {
      rows.push(row);
      lines.push(rowLine);
    }
    row = [];
    field = "";
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && src[i + 1] === "\n") i++;
      endRow();
      line++;
      rowLine = line;
    } else field += c;
  }
  if (field !== "" || row.length > 0) endRow();
  return Object.assign(rows, { lines });
}

/** The directory's files, sent as bulk items as they are. */
export type DirectoryKind = "centers" | "users" | "doctors" | "patients" | "services";
/** The agenda's files, whose rows name directory records (looked up in ./agenda.ts). */
export type AgendaKind = "doctor_services" | "working_hours" | "agenda_exceptions";
export type Kind = DirectoryKind | AgendaKind;

interface Column {
  name: string;
  required: boolean;
}

const col = (spec: string): Column => ({ name: spec.replace("*", ""), required: spec.endsWith("*") });

interface FileSpec {
  kind: Kind;
  file: string;
  columns: Column[];
  /** The columns that identify a row: a key repeated inside one file is a bad row. */
  key: string[];
}

/** The files, in the order they are loaded (what a row names is loaded before it), with their
 * columns (* required). */
export const FILES: FileSpec[] = [
  { kind: "centers", file: "centers.csv", columns: ["name*", "address*", "timezone*", "language"].map(col), key: ["name"] },
  { kind: "users", file: "users.csv", columns: ["username*", "role*", "password"].map(col), key: ["username"] },
  { kind: "doctors", file: "doctors.csv", columns: ["username*", "name*", "specialty*", "password"].map(col), key: ["username"] },
  {
    kind: "patients",
    file: "patients.csv",
    columns: ["email*", "name*", "phone", "language", "status", "username", "password"].map(col),
    key: ["email"],
  },
  {
    kind: "services",
    file: "services.csv",
    columns: ["name*", "duration_minutes*", "buffer_before_minutes", "buffer_after_minutes"].map(col),
    key: ["name"],
  },
  { kind: "doctor_services", file: "doctor_services.csv", columns: ["doctor*", "service*"].map(col), key: ["doctor", "service"] },
  {
    kind: "working_hours",
    file: "working_hours.csv",
    columns: ["doctor*", "center*", "weekday*", "start*", "end*", "valid_from", "valid_until"].map(col),
    key: ["doctor", "center", "weekday", "start", "end", "valid_from", "valid_until"],
  },
  {
    kind: "agenda_exceptions",
    file: "agenda_exceptions.csv",
    columns: ["doctor*", "kind*", "date*", "center", "start", "end", "note"].map(col),
    key: ["doctor", "kind", "date", "center", "start", "end"],
  },
];

export const spec = (kind: Kind): FileSpec => FILES.find((f) => f.kind === kind)!;

export const isAgenda = (kind: Kind): kind is AgendaKind =>
  kind === "doctor_services" || kind === "working_hours" || kind === "agenda_exceptions";

/** A cell as the API stores its value, for comparing keys: dates as YYYY-MM-DD, times as
 * HH:MM, text trimmed and in lower case. */
export function normalise(value: string): string {
  const v = value.trim();
  const date = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(v);
  if (date) return `${date[1]}-${date[2]!.padStart(2, "0")}-${date[3]!.padStart(2, "0")}`;
  const time = /^(\d{1,2}):(\d{2})$/.exec(v);
  if (time && Number(time[2]) < 60) return `${time[1]!.padStart(2, "0")}:${time[2]}`;
  return v.toLowerCase();
}

/** For each record whose key an earlier record of the file already has: the earlier line. */
export function repeats(kind: Kind, records: Record[]): Map<Record, number> {
  const seen = new Map<string, number>();
  const out = new Map<Record, number>();
  for (const record of records) {
    const k = spec(kind)
      .key.map((c) => normalise(record.cells.get(c) ?? ""))
      .join("\u0001");
    const first = seen.get(k);
    if (first === undefined) seen.set(k, record.line);
    else out.set(record, first);
  }
  return out;
}

const MINUTES = ["duration_minutes", "buffer_before_minutes", "buffer_after_minutes"];

/** A file's records by column name, or why the file cannot be read (an unknown or missing
 * column, a repeated one). */
export function read(kind: Kind, text: string): Parsed | { error: string } {
  const { columns } = spec(kind);
  const rows = parse(text);
  const header = (rows[0] ?? []).map((h) => h.trim().toLowerCase());
  if (header.length === 0) return { error: "empty file" };
  const known = new Set(columns.map((c) => c.name));
  const unknown = header.filter((h) => !known.has(h));
  if (unknown.length) return { error: `unknown column(s): ${unknown.join(", ")}` };
  const missing = columns.filter((c) => c.required && !header.includes(c.name)).map((c) => c.name);
  if (missing.length) return { error: `missing column(s): ${missing.join(", ")}` };
  if (new Set(header).size !== header.length) return { error: "a column is repeated" };
  const records = rows.slice(1).map((cells, i) => ({
    line: rows.lines[i + 1]!,
    cells: new Map(header.map((h, j) => [h, (cells[j] ?? "").trim()])),
  }));
  return { header, records };
}

/** The bulk item of a record: empty optional cells left out, required ones sent empty (so the
 * API names the field), minutes as numbers when they are whole numbers, roles lower-cased, and
 * a staff user without a password given one nobody knows (an admin sets a real one later). */
export function item(kind: DirectoryKind, record: Record): { [key: string]: unknown } {
  const out: { [key: string]: unknown } = {};
  for (const column of spec(kind).columns) {
    const value = record.cells.get(column.name) ?? "";
    if (column.name === "password" && kind === "users" && !value) {
      out.password = crypto.randomUUID() + crypto.randomUUID();
    } else if (!value) {
      if (column.required) out[column.name] = "";
    } else if (column.name === "role") out.role = value.toLowerCase();
    else if (MINUTES.includes(column.name) && /^\d+$/.test(value)) out[column.name] = Number(value);
    else out[column.name] = value;
  }
  return out;
}

/** Which file a chosen file is, by its name. */
export function kindOf(fileName: string): Kind | null {
  return FILES.find((f) => f.file === fileName.toLowerCase())?.kind ?? null;
}
