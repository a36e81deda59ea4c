// The initial load in the browser: the admin picks the CSV files (the directory's five and the
// agenda's three), the page reads and checks them here and sends their rows to the bulk
// endpoints in chunks, in dependency order, showing progress and each bad row with its file,
// line and reason. A row already there (409 duplicate, or the same offer, range or exception:
// ./agenda.ts) counts as already there, so loading twice adds nothing.
import { type FormEvent, useState } from "react";
import { Notice } from "../../components/ui";
import { ApiProblem, api, isErrorBody, must, type Schemas } from "../../lib/api/client";
import { reloadDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { EXCEPTION_FIELDS, HOURS_FIELDS, type Lookup, identity, lookupFrom, planOffers, prepare, windows } from "./agenda";
import { type DirectoryKind, FILES, type Kind, type Record, isAgenda, item, kindOf, normalise, read, repeats } from "./csv";

const CHUNK = 100;
/** Longest span of dates asked for in one GET /agenda-exceptions. */
const EXCEPTION_WINDOW_DAYS = 28;

interface FileReport {
  file: string;
  rows: number;
  created: number;
  existing: number;
  error?: string;
}

interface BadRow {
  file: string;
  line: number;
  reason: string;
}

/** What became of one row. */
type Outcome = "created" | "existing" | { bad: string };

type BulkKind = DirectoryKind | "working_hours" | "agenda_exceptions";

function bulk(kind: BulkKind, items: unknown[]) {
  const body = { body: items as never };
  switch (kind) {
    case "centers":
      return api.POST("/centers/bulk", body);
    case "users":
      return api.POST("/users/bulk", body);
    case "doctors":
      return api.POST("/doctors/bulk", body);
    case "patients":
      return api.POST("/patients/bulk", body);
    case "services":
      return api.POST("/services/bulk", body);
    case "working_hours":
      return api.POST("/working-hours/bulk", body);
    case "agenda_exceptions":
      return api.POST("/agenda-exceptions/bulk", body);
  }
}

function reason(error: Schemas["ErrorDetail"]): string {
  const details = Array.isArray(error.details) ? error.details : [];
  const fields = details.map((d) => {
    const f = d as { field?: string; message?: string };
    return f.field ? `${f.field}: ${f.message ?? ""}` : (f.message ?? "");
  });
  return fields.length ? fields.join("; ") : error.message;
}

/** Every item of a paginated list. */
async function all<T>(page: (n: number) => Promise<{ items: T[]; total: number }>): Promise<T[]> {
  const out: T[] = [];
  for (let n = 1; ; n++) {
    const p = await page(n);
    out.push(...p.items);
    if (p.items.length === 0 || out.length >= p.total) return out;
  }
}

const PER_PAGE = 200;

/** The directory as the agenda files name it, read after the directory files are loaded. */
async function loadLookup(): Promise<Lookup> {
  const [users, doctors, centers, services] = await Promise.all([
    all((page) => must(api.GET("/users", { params: { query: { role: "doctor", page, per_page: PER_PAGE } } }))),
    all((page) => must(api.GET("/doctors", { params: { query: { page, per_page: PER_PAGE } } }))),
    all((page) => must(api.GET("/centers", { params: { query: { page, per_page: PER_PAGE } } }))),
    all((page) => must(api.GET("/services", { params: { query: { page, per_page: PER_PAGE } } }))),
  ]);
  return lookupFrom(users, doctors, centers, services);
}

/** Sends items in chunks to a bulk endpoint: each item's outcome, in order (409 `duplicate`
 * counts as already there), `onChunk` after each answer. A refused request (not a per-item
 * error) throws. */
async function sendBulk(
  kind: BulkKind,
  items: unknown[],
  onChunk: (outcomes: { index: number; outcome: Outcome; code?: string }[]) => void,
) {
  for (let at = 0; at < items.length; at += CHUNK) {
    const r = await bulk(kind, items.slice(at, at + CHUNK));
    if (!r.data) throw new ApiProblem(r.response.status, r.error as never);
    onChunk(
      r.data.results.map((result) => {
        const index = at + result.index;
        if (result.status === "created") return { index, outcome: "created" };
        const code = result.error.code;
        return { index, code, outcome: code === "duplicate" ? "existing" : { bad: reason(result.error) } };
      }),
    );
  }
}

/** doctor_services.csv: one PUT per service, adding the file's doctors to the service's. */
async function loadOffers(records: Record[], lookup: Lookup, settle: (i: number, o: Outcome) => void) {
  const { known, plans } = planOffers(records, lookup);
  known.forEach((k, i) => k && settle(i, k));
  for (const plan of plans) {
    const r = await api.PUT("/services/{id}/doctors", {
      params: { path: { id: plan.serviceId } },
      body: { doctor_ids: plan.doctorIds },
    });
    const outcome: Outcome = r.data ? "created" : { bad: isErrorBody(r.error) ? reason(r.error.error) : `HTTP ${r.response.status}` };
    for (const i of plan.adds) settle(i, outcome);
  }
}

/** The items of an agenda file's rows, by row index; a row naming nothing known is settled bad. */
function prepareAll(
  kind: "working_hours" | "agenda_exceptions",
  records: Record[],
  lookup: Lookup,
  settle: (i: number, o: Outcome) => void,
): { index: number; item: { [f: string]: string } }[] {
  const ready: { index: number; item: { [f: string]: string } }[] = [];
  records.forEach((record, index) => {
    const p = prepare(kind, record, lookup);
    if ("bad" in p) settle(index, p);
    else ready.push({ index, item: p.item });
  });
  return ready;
}

/** working_hours.csv: sent in bulk; a range refused as `hours_overlap` is already there when the
 * doctor has the very same range (a second load), a bad row otherwise. */
async function loadHours(records: Record[], lookup: Lookup, settle: (i: number, o: Outcome) => void) {
  const sent = prepareAll("working_hours", records, lookup, settle);
  const overlaps: { index: number; item: { [f: string]: string }; outcome: Outcome }[] = [];
  await sendBulk(
    "working_hours",
    sent.map((s) => s.item),
    (outcomes) => {
      for (const { index, outcome, code } of outcomes) {
        if (code === "hours_overlap") overlaps.push({ ...sent[index]!, outcome });
        else settle(sent[index]!.index, outcome);
      }
    },
  );
  const doctors = [...new Set(overlaps.map((o) => o.item.doctor_id!))];
  const there = new Set<string>();
  for (const doctor_id of doctors) {
    const hours = await all((page) => must(api.GET("/working-hours", { params: { query: { doctor_id, page, per_page: PER_PAGE } } })));
    for (const h of hours) there.add(identity(h as never, HOURS_FIELDS));
  }
  for (const o of overlaps) settle(o.index, there.has(identity(o.item, HOURS_FIELDS)) ? "existing" : o.outcome);
}

/** agenda_exceptions.csv: the API keeps no key for exceptions, so each doctor's exceptions on
 * the file's dates are read first and one already there is not sent again. */
async function loadExceptions(records: Record[], lookup: Lookup, settle: (i: number, o: Outcome) => void) {
  const ready = prepareAll("agenda_exceptions", records, lookup, settle);
  const dates = new Map<string, string[]>();
  for (const { item } of ready) {
    if (/^\d{4}-\d{1,2}-\d{1,2}$/.test(item.date ?? "")) {
      dates.set(item.doctor_id!, [...(dates.get(item.doctor_id!) ?? []), normalise(item.date!)]);
    }
  }
  const there = new Set<string>();
  for (const [doctor_id, days] of dates) {
    for (const [from, to] of windows(days, EXCEPTION_WINDOW_DAYS)) {
      const list = await all((page) =>
        must(api.GET("/agenda-exceptions", { params: { query: { doctor_id, from, to, page, per_page: PER_PAGE } } })),
      );
      for (const e of list) there.add(identity(e as never, EXCEPTION_FIELDS));
    }
  }
  const sent = ready.filter(({ index, item }) => {
    if (!there.has(identity(item, EXCEPTION_FIELDS))) return true;
    settle(index, "existing");
    return false;
  });
  await sendBulk(
    "agenda_exceptions",
    sent.map((s) => s.item),
    (outcomes) => outcomes.forEach(({ index, outcome }) => settle(sent[index]!.index, outcome)),
  );
}

export function CsvLoad() {
  const t = useT();
  const lang = useLang();
  const [reports, setReports] = useState<FileReport[]>([]);
  const [bad, setBad] = useState<BadRow[]>([]);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);

  async function load(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const chosen = [...((e.currentTarget.elements.namedItem("files") as HTMLInputElement).files ?? [])];
    setError(null);
    setBad([]);
    // The previous load's report goes at once: what shows next is this load's.
    setReports([]);
    const out: FileReport[] = [];
    const badRows: BadRow[] = [];
    const work: { kind: Kind; file: string; records: Record[] }[] = [];
    for (const file of chosen) {
      const kind = kindOf(file.name);
      if (!kind) {
        out.push({ file: file.name, rows: 0, created: 0, existing: 0, error: t("unknownFile") });
        continue;
      }
      const parsed = read(kind, await file.text());
      if ("error" in parsed) {
        out.push({ file: file.name, rows: 0, created: 0, existing: 0, error: parsed.error });
        continue;
      }
      work.push({ kind, file: file.name, records: parsed.records });
    }
    // Dependency order: the files' own order in FILES.
    work.sort((a, b) => FILES.findIndex((f) => f.kind === a.kind) - FILES.findIndex((f) => f.kind === b.kind));
    const total = work.reduce((n, w) => n + w.records.length, 0);
    let done = 0;
    const show = () => {
      setProgress({ done, total });
      setReports([...out]);
      setBad([...badRows]);
    };
    show();
    setRunning(true);
    let lookup: Lookup | null = null;
    try {
      for (const w of work) {
        const report: FileReport = { file: w.file, rows: w.records.length, created: 0, existing: 0 };
        out.push(report);
        const record = (o: Outcome, line: number) => {
          if (o === "created") report.created++;
          else if (o === "existing") report.existing++;
          else badRows.push({ file: w.file, line, reason: o.bad });
          done++;
        };
        // A key repeated inside the file is a bad row; the rest are sent.
        const repeated = repeats(w.kind, w.records);
        for (const [r, first] of repeated) record({ bad: t("repeatedRow", { line: first }) }, r.line);
        const records = w.records.filter((r) => !repeated.has(r));
        const settle = (i: number, o: Outcome) => record(o, records[i]!.line);
        if (!isAgenda(w.kind)) {
          const kind = w.kind;
          await sendBulk(
            kind,
            records.map((r) => item(kind, r)),
            (outcomes) => {
              outcomes.forEach(({ index, outcome }) => settle(index, outcome));
              show();
            },
          );
        } else {
          lookup ??= await loadLookup();
          if (w.kind === "doctor_services") await loadOffers(records, lookup, settle);
          else if (w.kind === "working_hours") await loadHours(records, lookup, settle);
          else await loadExceptions(records, lookup, settle);
        }
        // Bad rows in file order, whatever order their answers came in.
        badRows.sort((a, b) => (a.file === b.file ? a.line - b.line : 0));
        show();
      }
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setRunning(false);
      show();
      reloadDirectory();
    }
  }

  return (
    <section aria-labelledby="load-title">
      <h1 id="load-title">{t("loadTitle")}</h1>
      <p>{t("loadIntro")}</p>
      <p className="muted">{FILES.map((f) => f.file).join(", ")}</p>
      <form onSubmit={load} className="card">
        <div className="field">
          <label htmlFor="files">{t("csvFiles")}</label>
          <input id="files" name="files" type="file" accept=".csv,text/csv" multiple required />
        </div>
        <button type="submit" className="primary" disabled={running}>
          {t("loadStart")}
        </button>
      </form>
      {error && <Notice kind="error">{error}</Notice>}
      {progress && (
        <div className="field">
          <label htmlFor="load-progress">{t("progress", progress)}</label>
          <progress id="load-progress" value={progress.done} max={Math.max(progress.total, 1)} />
        </div>
      )}
      {reports.length > 0 && (
        <table className="report" aria-label={t("loadTitle")}>
          <thead>
            <tr>
              <th scope="col">{t("file")}</th>
              <th scope="col">{t("rowsWord")}</th>
              <th scope="col">{t("created")}</th>
              <th scope="col">{t("existing")}</th>
            </tr>
          </thead>
          <tbody>
            {reports.map((r) => (
              <tr key={r.file}>
                <th scope="row">{r.file}</th>
                {r.error ? (
                  <td colSpan={3} className="bad">
                    {r.error}
                  </td>
                ) : (
                  <>
                    <td>{r.rows}</td>
                    <td>{r.created}</td>
                    <td>{r.existing}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!running && progress && (bad.length === 0 ? <Notice kind="ok">{t("noBadRows")}</Notice> : null)}
      {bad.length > 0 && (
        <table className="report" aria-label={t("badRows")}>
          <caption>{t("badRows")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("file")}</th>
              <th scope="col">{t("line")}</th>
              <th scope="col">{t("why")}</th>
            </tr>
          </thead>
          <tbody>
            {bad.map((b) => (
              <tr key={`${b.file}:${b.line}`}>
                <td>{b.file}</td>
                <td>{b.line}</td>
                <td>{b.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
