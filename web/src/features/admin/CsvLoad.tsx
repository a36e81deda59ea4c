// The initial load in the browser: the admin picks the CSV files, the page reads and checks
// them here and sends their rows to the bulk endpoints in chunks, in dependency order, showing
// progress and each bad row with its file, line and reason. A row whose key is already there
// (409 duplicate) counts as already there, so loading twice adds nothing.
import { type FormEvent, useState } from "react";
import { Notice } from "../../components/ui";
import { ApiProblem, api, type Schemas } from "../../lib/api/client";
import { reloadDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { FILES, type Kind, item, kindOf, read } from "./csv";

const CHUNK = 100;

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

function bulk(kind: Kind, items: unknown[]) {
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
    const work: { kind: Kind; file: string; records: { line: number; item: unknown }[] }[] = [];
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
      work.push({ kind, file: file.name, records: parsed.records.map((r) => ({ line: r.line, item: item(kind, r) })) });
    }
    // Dependency order: the files' own order in FILES.
    work.sort((a, b) => FILES.findIndex((f) => f.kind === a.kind) - FILES.findIndex((f) => f.kind === b.kind));
    const total = work.reduce((n, w) => n + w.records.length, 0);
    let done = 0;
    setProgress({ done, total });
    setRunning(true);
    try {
      for (const w of work) {
        const report: FileReport = { file: w.file, rows: w.records.length, created: 0, existing: 0 };
        out.push(report);
        for (let at = 0; at < w.records.length; at += CHUNK) {
          const chunk = w.records.slice(at, at + CHUNK);
          const r = await bulk(w.kind, chunk.map((c) => c.item));
          if (!r.data) throw new ApiProblem(r.response.status, r.error as never);
          for (const result of r.data.results) {
            const line = chunk[result.index]!.line;
            if (result.status === "created") report.created++;
            else if (result.error.code === "duplicate") report.existing++;
            else badRows.push({ file: w.file, line, reason: reason(result.error) });
          }
          done += chunk.length;
          setProgress({ done, total });
          setReports([...out]);
          setBad([...badRows]);
        }
      }
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setRunning(false);
      setReports([...out]);
      setBad([...badRows]);
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
