// The agenda of a center (secretaries, admins: one column per doctor) or of a doctor (their
// own), for a day or a week, in the center's clock: working hours shaded, appointments with
// patient and service, free slots of the chosen service to book for a patient. Staff cancel,
// move and record attendance; doctors record attendance.
//
// It updates itself: the bookings are polled every POLL_MS with the ETag of the last answer
// (`If-None-Match`), so an unchanged agenda costs a 304 and a change shows within a poll.
import { type CSSProperties, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Notice, Select, useIntoView } from "../../components/ui";
import { ApiProblem, WAIT, api, idempotencyKey, must, type Schemas } from "../../lib/api/client";
import { useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { getSession } from "../../lib/session";
import { addDays, formatLocalDate, formatShortDate, formatTime, localDate, mondayOf, zoneLabel } from "../../lib/time";
import { BookForPatient } from "./BookForPatient";
import { type Booking, type Exception, type FreeSlot, type Hours, hhmm, holding, inCell, rows, working } from "./grid";

export const POLL_MS = 3000;

type Selected = { kind: "slot"; slot: FreeSlot } | { kind: "booking"; booking: Booking } | null;

export function Agenda() {
  const t = useT();
  const lang = useLang();
  const session = getSession()!;
  const staff = session.role === "admin" || session.role === "secretary";
  const { directory } = useDirectory();
  const [centerId, setCenterId] = useState("");
  // A phone opens on the day, a wider screen on the week.
  const [view, setView] = useState<"week" | "day">(() =>
    typeof matchMedia !== "undefined" && matchMedia("(max-width: 40rem)").matches ? "day" : "week",
  );
  const [date, setDate] = useState<string | null>(null);
  const [serviceId, setServiceId] = useState("");
  const [hours, setHours] = useState<Hours[]>([]);
  const [exceptions, setExceptions] = useState<Exception[]>([]);
  const [bookings, setBookings] = useState<Booking[]>([]);
  const [free, setFree] = useState<FreeSlot[]>([]);
  const [patients, setPatients] = useState<Map<string, Schemas["Patient"]>>(new Map());
  const [selected, setSelected] = useState<Selected>(null);
  const [moving, setMoving] = useState<Booking | null>(null);
  const [notice, setNotice] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const etag = useRef("");
  const panel = useRef<HTMLElement>(null);
  useIntoView(panel, selected);

  // The hours: a center's (staff) or the doctor's own, everywhere.
  useEffect(() => {
    const query = staff ? (centerId ? { center_id: centerId } : null) : { doctor_id: session.doctorId };
    if (!query) return;
    must(api.GET("/working-hours", { params: { query: { ...query, per_page: 200 } } })).then(
      (page) => setHours(page.items),
      (err) => setNotice({ kind: "error", text: describe(err, lang) }),
    );
  }, [staff, centerId, session.doctorId, lang]);

  const centers = useMemo(() => {
    const all = [...(directory?.centers.values() ?? [])].filter((c) => c.active);
    return staff ? all : all.filter((c) => hours.some((h) => h.center_id === c.id));
  }, [directory, staff, hours]);
  useEffect(() => {
    // Functional: a choice made meanwhile wins.
    if (!centerId && centers[0]) setCenterId((current) => current || centers[0]!.id);
  }, [centers, centerId]);
  const center = directory?.centers.get(centerId);
  const zone = center?.timezone ?? "UTC";
  useEffect(() => {
    if (center && !date) setDate((current) => current ?? localDate(new Date(), center.timezone));
  }, [center, date]);

  const days = useMemo(() => {
    if (!date) return [];
    if (view === "day") return [date];
    const monday = mondayOf(date);
    return Array.from({ length: 7 }, (_, i) => addDays(monday, i));
  }, [date, view]);
  const hereHours = useMemo(() => hours.filter((h) => h.center_id === centerId), [hours, centerId]);
  // Time off and extra openings of the days shown that apply here (time off without a center
  // applies at every center).
  const first = days[0];
  const last = days[days.length - 1];
  useEffect(() => {
    if (!centerId || !first || !last) return;
    const query = staff ? { center_id: centerId } : { doctor_id: session.doctorId };
    must(api.GET("/agenda-exceptions", { params: { query: { ...query, from: first, to: last, per_page: 200 } } })).then(
      (page) => setExceptions(page.items.filter((e) => !e.center_id || e.center_id === centerId)),
      (err) => setNotice({ kind: "error", text: describe(err, lang) }),
    );
  }, [staff, centerId, session.doctorId, first, last, lang]);
  const doctorIds = useMemo(() => {
    if (!staff) return session.doctorId ? [session.doctorId] : [];
    const ids = [...new Set(hereHours.map((h) => h.doctor_id))];
    return ids.sort((a, b) => (directory?.doctors.get(a)?.name ?? "").localeCompare(directory?.doctors.get(b)?.name ?? ""));
  }, [staff, session.doctorId, hereHours, directory]);
  const services = useMemo(
    () =>
      [...(directory?.services.values() ?? [])].filter((s) => s.active && s.doctor_ids.some((d) => doctorIds.includes(d))),
    [directory, doctorIds],
  );
  useEffect(() => {
    if (staff && !serviceId && services[0]) setServiceId((current) => current || services[0]!.id);
  }, [staff, services, serviceId]);

  // The bookings of the days shown (a day of margin each side: the center's dates are not
  // UTC dates). Page 1 is asked with the last ETag; an agenda of more than one page is read
  // whole each time (no ETag kept for it).
  const poll = useCallback(async () => {
    if (!centerId || days.length === 0) return false;
    const query = {
      center_id: centerId,
      doctor_id: staff ? undefined : session.doctorId,
      from: addDays(days[0]!, -1),
      to: addDays(days.at(-1)!, 1),
      per_page: 200,
    };
    const first = await api.GET("/bookings", {
      params: { query: { ...query, page: 1 }, header: etag.current ? { "If-None-Match": etag.current } : {} },
    });
    if (first.response.status === 304) return false;
    if (!first.data) throw new ApiProblem(first.response.status, first.error as never);
    const { total, per_page } = first.data;
    etag.current = total <= per_page ? (first.response.headers.get("ETag") ?? "") : "";
    let items = first.data.items;
    for (let page = 2; (page - 1) * per_page < total; page++) {
      items = items.concat((await must(api.GET("/bookings", { params: { query: { ...query, page } } }))).items);
    }
    setBookings(items);
    return true;
  }, [centerId, days, staff, session.doctorId]);

  // A new center or range starts afresh.
  useEffect(() => {
    etag.current = "";
    setBookings([]);
    setSelected(null);
  }, [centerId, days]);

  useEffect(() => {
    let live = true;
    const tick = () =>
      poll().catch((err) => {
        if (live) setNotice({ kind: "error", text: describe(err, lang) });
      });
    void tick();
    const timer = setInterval(tick, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [poll, lang]);

  // Free slots of the chosen service, again whenever the bookings change.
  useEffect(() => {
    if (!staff || !serviceId || !centerId || days.length === 0) return setFree([]);
    must(
      api.GET("/availability", {
        params: { query: { service_id: serviceId, center_id: centerId, from: days[0], to: days.at(-1) } },
      }),
    ).then(
      (a) => setFree(a.days.flatMap((d) => d.slots)),
      () => setFree([]),
    );
  }, [staff, serviceId, centerId, days, bookings]);

  // Patient names (staff only: doctors do not read patients).
  useEffect(() => {
    if (!staff) return;
    const missing = [...new Set(bookings.map((b) => b.patient_id))].filter((id) => !patients.has(id));
    if (missing.length === 0) return;
    Promise.all(missing.map((id) => must(api.GET("/patients/{id}", { params: { path: { id } } })).catch(() => null))).then(
      (found) =>
        setPatients((current) => {
          const next = new Map(current);
          for (const p of found) if (p) next.set(p.id, p);
          return next;
        }),
    );
  }, [staff, bookings, patients]);

  const shown = bookings.filter(holding);
  const serviceName = (b: Booking) => (b.service_id && directory?.services.get(b.service_id)?.name) || b.reason || "";
  const patientName = (b: Booking) => patients.get(b.patient_id)?.name ?? "";

  async function act(what: () => Promise<unknown>, done: string) {
    setBusy(true);
    setNotice(null);
    try {
      await what();
      setNotice({ kind: "ok", text: done });
      setSelected(null);
      setMoving(null);
      await poll();
    } catch (err) {
      setNotice({ kind: "error", text: describe(err, lang) });
    } finally {
      setBusy(false);
    }
  }

  const headers = () => ({ Prefer: WAIT, "Idempotency-Key": idempotencyKey() });
  // Attendance is recorded once the visit has started; until then it can be moved or cancelled.
  const started = (b: Booking) => Date.parse(b.starts_at) <= Date.now();
  const cancel = (b: Booking) =>
    act(() => must(api.POST("/bookings/{id}/cancel", { params: { path: { id: b.id }, header: headers() } })), t("cancelled"));
  const mark = (b: Booking, outcome: "attended" | "no_show") =>
    act(
      () =>
        must(api.POST("/bookings/{id}/attendance", { params: { path: { id: b.id }, header: headers() }, body: { outcome } })),
      t(outcome),
    );
  const move = (b: Booking, slot: FreeSlot) =>
    act(
      () =>
        must(
          api.POST("/bookings/{id}/reschedule", {
            params: { path: { id: b.id }, header: headers() },
            body: { start: slot.start, doctor_id: slot.doctor_id, center_id: slot.center_id },
          }),
        ),
      t("rescheduled"),
    );

  const onFree = (slot: FreeSlot) => {
    if (moving) void move(moving, slot);
    else setSelected({ kind: "slot", slot });
  };

  return (
    <section aria-labelledby="agenda-title" className="agenda">
      <h1 id="agenda-title">
        {t("agendaTitle")}
        {center ? ` — ${center.name}` : ""}
      </h1>
      <div className="filters">
        <Select label={t("center")} value={centerId} onChange={(e) => setCenterId(e.target.value)}>
          {centers.map((c) => (
            <option key={c.id} value={c.id}>
              {c.name}
            </option>
          ))}
        </Select>
        {staff && (
          <Select label={t("service")} value={serviceId} onChange={(e) => setServiceId(e.target.value)}>
            {services.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} ({s.duration_minutes} {t("minutes")})
              </option>
            ))}
          </Select>
        )}
      </div>
      <div className="toolbar" role="toolbar" aria-label={t("agendaTitle")}>
        <div role="group" aria-label={t("week")}>
          <button type="button" aria-pressed={view === "week"} onClick={() => setView("week")}>
            {t("week")}
          </button>
          <button type="button" aria-pressed={view === "day"} onClick={() => setView("day")}>
            {t("dayView")}
          </button>
        </div>
        <button type="button" onClick={() => date && setDate(addDays(date, view === "week" ? -7 : -1))}>
          ‹ {t("previous")}
        </button>
        <button type="button" onClick={() => setDate(localDate(new Date(), zone))}>
          {t("today")}
        </button>
        <button type="button" onClick={() => date && setDate(addDays(date, view === "week" ? 7 : 1))}>
          {t("next")} ›
        </button>
        <span className="muted">{t("timesIn", { zone: zoneLabel(zone, lang) })}</span>
      </div>

      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      {moving && (
        <Notice kind="info">
          {t("moveHint")}{" "}
          <button type="button" onClick={() => setMoving(null)}>
            {t("back")}
          </button>
        </Notice>
      )}

      {selected?.kind === "slot" && (
        <BookForPatient
          slot={selected.slot}
          serviceId={serviceId}
          doctorName={directory?.doctors.get(selected.slot.doctor_id)?.name ?? ""}
          zone={zone}
          onClose={() => setSelected(null)}
          onBooked={(text) => {
            setSelected(null);
            setNotice({ kind: "ok", text });
            void poll();
          }}
        />
      )}

      {selected?.kind === "booking" && (
        <section className="card panel" aria-label={t("appointment")} ref={panel}>
          <h2>
            {formatTime(selected.booking.starts_at, zone, lang)}–{formatTime(selected.booking.ends_at, zone, lang)}{" "}
            {formatLocalDate(localDate(selected.booking.starts_at, zone), lang)}
          </h2>
          <dl>
            {staff && (
              <>
                <dt>{t("patient")}</dt>
                <dd>
                  {patientName(selected.booking)} {patients.get(selected.booking.patient_id)?.phone ?? ""}
                </dd>
              </>
            )}
            <dt>{t("service")}</dt>
            <dd>{serviceName(selected.booking)}</dd>
            <dt>{t("doctor")}</dt>
            <dd>{directory?.doctors.get(selected.booking.doctor_id)?.name}</dd>
            <dt>{t("status")}</dt>
            <dd>{selected.booking.attendance ? t(selected.booking.attendance as "attended") : t(`status_${selected.booking.status}` as "status_confirmed")}</dd>
          </dl>
          <div className="actions">
            {staff && !started(selected.booking) && (
              <>
                <button type="button" onClick={() => setMoving(selected.booking)} disabled={busy}>
                  {t("move")}
                </button>
                <button type="button" className="danger" onClick={() => cancel(selected.booking)} disabled={busy}>
                  {t("cancel")}
                </button>
              </>
            )}
            {selected.booking.status === "confirmed" && started(selected.booking) && !selected.booking.attendance && (
              <>
                <button type="button" onClick={() => mark(selected.booking, "attended")} disabled={busy}>
                  {t("markAttended")}
                </button>
                <button type="button" onClick={() => mark(selected.booking, "no_show")} disabled={busy}>
                  {t("markNoShow")}
                </button>
              </>
            )}
            <button type="button" onClick={() => setSelected(null)}>
              {t("close")}
            </button>
          </div>
        </section>
      )}

      {days.map((day) => {
        const dayRows = rows(
          day,
          hereHours.filter((h) => doctorIds.includes(h.doctor_id)),
          shown,
          zone,
          exceptions.filter((e) => doctorIds.includes(e.doctor_id)),
        );
        return (
          <div key={day} className="grid-wrap">
          <table className="grid" style={{ "--doctors": doctorIds.length } as CSSProperties}>
            <caption>{formatLocalDate(day, lang)}</caption>
            <thead>
              <tr>
                <th scope="col">
                  <span className="sr-only">{t("when")}</span>
                </th>
                {doctorIds.map((id) => (
                  <th scope="col" key={id}>
                    {directory?.doctors.get(id)?.name ?? ""}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {dayRows.length === 0 && (
                <tr>
                  <td colSpan={doctorIds.length + 1} className="muted">
                    {t("closed")}
                  </td>
                </tr>
              )}
              {dayRows.map((minute) => (
                <tr key={minute}>
                  <th scope="row">{hhmm(minute)}</th>
                  {doctorIds.map((doctorId) => {
                    const here = inCell(shown, (b) => b.starts_at, day, minute, doctorId, zone);
                    const open = inCell(free, (s) => s.start, day, minute, doctorId, zone);
                    const doctor = directory?.doctors.get(doctorId)?.name ?? "";
                    return (
                      <td key={doctorId} className={working(day, minute, doctorId, hereHours, exceptions) ? "hours" : undefined}>
                        {here.map((b) => (
                          <button
                            type="button"
                            key={b.id}
                            className={`booked status-${b.status}${b.attendance ? ` ${b.attendance}` : ""}`}
                            onClick={() => setSelected({ kind: "booking", booking: b })}
                          >
                            <strong>{formatTime(b.starts_at, zone, lang)}</strong> {staff ? patientName(b) : ""}
                            <small>{serviceName(b)}</small>
                          </button>
                        ))}
                        {open.map((s) => (
                          <button
                            type="button"
                            key={s.start}
                            className="free"
                            aria-label={`${t("free")} ${formatShortDate(day, lang)} ${formatTime(s.start, zone, lang)} ${doctor}`}
                            onClick={() => onFree(s)}
                          >
                            {formatTime(s.start, zone, lang)} {t("free")}
                          </button>
                        ))}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          </div>
        );
      })}
      <p className="muted">{t("agendaLive", { seconds: POLL_MS / 1000 })}</p>
    </section>
  );
}
