// A doctor's agenda on their directory page: weekly working hours, time off and extra openings
// (from yesterday on), and the services they offer; each a list with "remove" and a form to
// add one, drawn by one component (Part) from a small config. Times are the center's local
// time and show next to its time zone.
import { type ReactNode, useCallback, useEffect, useState } from "react";
import { api, must, mustDo, type Schemas } from "../../../lib/api/client";
import { reloadDirectory } from "../../../lib/directory";
import { type Key, useLang, useT } from "../../../lib/i18n";
import { addDays, formatLocalDate, localDate, zoneLabel } from "../../../lib/time";
import type { FieldSpec } from "./form";
import { Focused, RecordForm, problem } from "./RecordForm";

type Center = Schemas["Center"];

const centers = new Map<string, Promise<Center>>();

/** A center by id, loaded once per page load (names and zones of the rows' centers). */
function useCenter(id: string | null | undefined): Center | null {
  const [center, setCenter] = useState<Center | null>(null);
  useEffect(() => {
    if (!id) return setCenter(null);
    let live = true;
    let loading = centers.get(id);
    if (!loading) {
      loading = must(api.GET("/centers/{id}", { params: { path: { id } } }));
      centers.set(id, loading);
    }
    loading.then(
      (c) => live && setCenter(c),
      () => centers.delete(id),
    );
    return () => {
      live = false;
    };
  }, [id]);
  return center;
}

function CenterName({ id }: { id: string | null | undefined }) {
  const t = useT();
  const center = useCenter(id);
  if (!id) return <>{t("allCenters")}</>;
  return <>{center?.name ?? "…"}</>;
}

/** `09:00–13:00` with the center's zone: "Europe/Madrid (CET)". */
function Times({ start, end, centerId }: { start?: string | null; end?: string | null; centerId?: string | null }) {
  const t = useT();
  const lang = useLang();
  const center = useCenter(centerId);
  if (!start || !end) return <>{t("wholeDay")}</>;
  return (
    <>
      {start}–{end}
      {center && <small className="zone"> {zoneLabel(center.timezone, lang)}</small>}
      {!centerId && <small className="zone"> {t("eachCenterTime")}</small>}
    </>
  );
}

const WEEKDAYS: readonly { value: string; label: Key }[] = [
  { value: "monday", label: "wd_monday" },
  { value: "tuesday", label: "wd_tuesday" },
  { value: "wednesday", label: "wd_wednesday" },
  { value: "thursday", label: "wd_thursday" },
  { value: "friday", label: "wd_friday" },
  { value: "saturday", label: "wd_saturday" },
  { value: "sunday", label: "wd_sunday" },
];
const weekdayKey = (w: string): Key => WEEKDAYS.find((d) => d.value === w)?.label ?? "wd_monday";
const KIND_OPTIONS: readonly { value: string; label: Key }[] = [
  { value: "time_off", label: "kind_time_off" },
  { value: "extra", label: "kind_extra" },
];
const kindKey = (k: string): Key => (k === "extra" ? "kind_extra" : "kind_time_off");

interface PartConfig<R extends { id: string }> {
  id: string;
  title: Key;
  intro?: Key;
  empty: Key;
  add: Key;
  columns: { label: Key; cell: (row: R) => ReactNode }[];
  /** What the row's remove button says it removes. */
  name: (row: R) => string;
  load: () => Promise<R[]>;
  remove: (row: R) => Promise<unknown>;
  fields: readonly FieldSpec[];
  create: (body: Record<string, unknown>) => Promise<unknown>;
}

/** A list of the doctor's rows with a remove button each, and the form that adds one. */
function Part<R extends { id: string }>({ config, onChange }: { config: PartConfig<R>; onChange: () => void }) {
  const t = useT();
  const lang = useLang();
  const [rows, setRows] = useState<R[] | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { load } = config;

  const reload = useCallback(
    () =>
      load().then(
        (r) => setRows(r),
        (err) => setError(problem(err, lang)),
      ),
    [load, lang],
  );
  useEffect(() => {
    reload();
  }, [reload]);

  async function remove(row: R) {
    setDone(null);
    setError(null);
    try {
      await config.remove(row);
      reloadDirectory();
      onChange();
      setDone(t("removedOne", { what: config.name(row) }));
      await reload();
    } catch (err) {
      setError(problem(err, lang));
    }
  }

  return (
    <section aria-labelledby={`${config.id}-title`} className="panel">
      <h2 id={`${config.id}-title`}>{t(config.title)}</h2>
      {config.intro && <p className="muted">{t(config.intro)}</p>}
      {done && <Focused kind="ok">{done}</Focused>}
      {error && <Focused kind="error">{error}</Focused>}
      {rows && rows.length === 0 && <p>{t(config.empty)}</p>}
      {rows && rows.length > 0 && (
        <div className="grid-wrap">
          <table className="report stack" aria-labelledby={`${config.id}-title`}>
            <thead>
              <tr>
                {config.columns.map((c) => (
                  <th scope="col" key={c.label}>
                    {t(c.label)}
                  </th>
                ))}
                <th scope="col">
                  <span className="sr-only">{t("remove")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id}>
                  {config.columns.map((c) => (
                    <td key={c.label} data-label={t(c.label)}>
                      {c.cell(row)}
                    </td>
                  ))}
                  <td>
                    <button type="button" onClick={() => remove(row)} aria-label={`${t("remove")}: ${config.name(row)}`}>
                      {t("remove")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <details className="add">
        <summary>{t(config.add)}</summary>
        <RecordForm
          fields={config.fields}
          label={t(config.add)}
          submit="add"
          idPrefix={config.id}
          save={config.create}
          onSaved={() => {
            onChange();
            setError(null);
            setDone(t("addedOne"));
            reload();
          }}
        />
      </details>
    </section>
  );
}

const hoursFields: readonly FieldSpec<keyof Schemas["NewWorkingHours"]>[] = [
  { name: "center_id", label: "center", input: "pick", pick: "centers", required: true },
  { name: "weekday", label: "weekday", input: "select", options: WEEKDAYS, required: true },
  { name: "start", label: "startTime", input: "time", required: true, hint: "localTimeHint" },
  { name: "end", label: "endTime", input: "time", required: true, hint: "endTimeHint" },
  { name: "valid_from", label: "validFrom", input: "date" },
  { name: "valid_until", label: "validUntil", input: "date" },
];

const exceptionFields: readonly FieldSpec<keyof Schemas["NewAgendaException"]>[] = [
  { name: "kind", label: "exceptionKind", input: "select", options: KIND_OPTIONS, required: true },
  { name: "date", label: "day", input: "date", required: true },
  { name: "center_id", label: "center", input: "pick", pick: "centers", none: "allCenters" },
  { name: "start", label: "startTime", input: "time", hint: "wholeDayHint" },
  { name: "end", label: "endTime", input: "time" },
  { name: "note", label: "note", maxLength: 500 },
];

const serviceFields: readonly FieldSpec[] = [{ name: "service_id", label: "service", input: "pick", pick: "services", required: true }];

function useConfigs(doctorId: string) {
  const t = useT();
  const lang = useLang();
  const hours = useCallback(
    () =>
      must(api.GET("/working-hours", { params: { query: { doctor_id: doctorId, per_page: 200 } } })).then((p) => p.items),
    [doctorId],
  );
  const exceptions = useCallback(() => {
    const from = addDays(localDate(new Date(), "UTC"), -1);
    return must(api.GET("/agenda-exceptions", { params: { query: { doctor_id: doctorId, from, per_page: 200 } } })).then(
      (p) => p.items,
    );
  }, [doctorId]);
  const services = useCallback(
    () => must(api.GET("/services", { params: { query: { doctor_id: doctorId, per_page: 200 } } })).then((p) => p.items),
    [doctorId],
  );
  const setDoctors = (serviceId: string, doctorIds: string[]) =>
    must(api.PUT("/services/{id}/doctors", { params: { path: { id: serviceId } }, body: { doctor_ids: doctorIds } }));

  const hoursPart: PartConfig<Schemas["WorkingHours"]> = {
    id: "hours",
    title: "workingHours",
    intro: "localTimesIntro",
    empty: "noHours",
    add: "addHours",
    columns: [
      { label: "weekday", cell: (h) => t(weekdayKey(h.weekday)) },
      { label: "time", cell: (h) => <Times start={h.start} end={h.end} centerId={h.center_id} /> },
      { label: "center", cell: (h) => <CenterName id={h.center_id} /> },
      {
        label: "validity",
        cell: (h) =>
          h.valid_from || h.valid_until
            ? `${h.valid_from ? formatLocalDate(h.valid_from, lang, true) : "…"} – ${h.valid_until ? formatLocalDate(h.valid_until, lang, true) : "…"}`
            : t("always"),
      },
    ],
    name: (h) => `${t(weekdayKey(h.weekday))} ${h.start}–${h.end}`,
    load: hours,
    remove: (h) => mustDo(api.DELETE("/working-hours/{id}", { params: { path: { id: h.id } } })),
    fields: hoursFields,
    create: (body) => must(api.POST("/working-hours", { body: { ...body, doctor_id: doctorId } as Schemas["NewWorkingHours"] })),
  };

  const exceptionsPart: PartConfig<Schemas["AgendaException"]> = {
    id: "exceptions",
    title: "exceptions",
    intro: "exceptionsIntro",
    empty: "noExceptions",
    add: "addException",
    columns: [
      { label: "day", cell: (x) => formatLocalDate(x.date, lang, true) },
      { label: "exceptionKind", cell: (x) => t(kindKey(x.kind)) },
      { label: "time", cell: (x) => <Times start={x.start} end={x.end} centerId={x.center_id} /> },
      { label: "center", cell: (x) => <CenterName id={x.center_id} /> },
      { label: "note", cell: (x) => x.note ?? "" },
    ],
    name: (x) => `${t(kindKey(x.kind))} ${formatLocalDate(x.date, lang)}`,
    load: exceptions,
    remove: (x) => mustDo(api.DELETE("/agenda-exceptions/{id}", { params: { path: { id: x.id } } })),
    fields: exceptionFields,
    create: (body) =>
      must(api.POST("/agenda-exceptions", { body: { ...body, doctor_id: doctorId } as Schemas["NewAgendaException"] })),
  };

  const servicesPart: PartConfig<Schemas["Service"]> = {
    id: "offered",
    title: "offeredServices",
    empty: "noOfferedServices",
    add: "addService",
    columns: [
      { label: "service", cell: (s) => s.name },
      { label: "durationMinutes", cell: (s) => String(s.duration_minutes) },
    ],
    name: (s) => s.name,
    load: services,
    // The API replaces a service's whole list of doctors: this one is taken out of, or added
    // to, the list as it is now.
    remove: (s) => setDoctors(s.id, s.doctor_ids.filter((d) => d !== doctorId)),
    fields: serviceFields,
    create: async (body) => {
      const id = String(body.service_id ?? "");
      const service = await must(api.GET("/services/{id}", { params: { path: { id } } }));
      return setDoctors(id, [...new Set([...service.doctor_ids, doctorId])]);
    },
  };
  return { hoursPart, exceptionsPart, servicesPart };
}

/** `onChange`: something was added or removed (the page's own notice is then old news). */
export function DoctorAgenda({ doctorId, onChange }: { doctorId: string; onChange: () => void }) {
  const { hoursPart, exceptionsPart, servicesPart } = useConfigs(doctorId);
  return (
    <>
      <Part config={hoursPart} onChange={onChange} />
      <Part config={exceptionsPart} onChange={onChange} />
      <Part config={servicesPart} onChange={onChange} />
    </>
  );
}
