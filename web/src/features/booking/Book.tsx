// The patient's booking flow: service → center → doctor or any doctor → day → a free slot →
// confirm. The answer comes at once (`Prefer: wait`); a slot taken meanwhile says so and
// offers the next free ones. With `?reschedule=<id>` the same page moves that booking (the old
// one is kept if the new slot fails, as the API guarantees).
import { type FormEvent, useCallback, useEffect, useMemo, useState } from "react";
import { Notice, Select } from "../../components/ui";
import { ApiProblem, WAIT, api, idempotencyKey, must, type Schemas } from "../../lib/api/client";
import { useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { navigate } from "../../lib/router";
import { getSession } from "../../lib/session";
import { addDays, formatDateTime, formatLocalDate, formatShortDate, formatTime, localDate, zoneLabel } from "../../lib/time";
import { JoinWaitlist } from "../waitlist/Waitlist";
import { type Availability, type FreeSlot, firstDayWithSlots, nextSlots, slotKey } from "./slots";

const DAYS = 7;

export function Book({ rescheduleId, welcome }: { rescheduleId: string | null; welcome: boolean }) {
  const t = useT();
  const lang = useLang();
  const { directory, error: directoryError } = useDirectory();
  const [old, setOld] = useState<Schemas["Booking"] | null>(null);
  const [serviceId, setServiceId] = useState("");
  const [centerId, setCenterId] = useState("");
  const [doctorId, setDoctorId] = useState("");
  const [from, setFrom] = useState<string | null>(null);
  const [day, setDay] = useState<string | null>(null);
  const [availability, setAvailability] = useState<Availability | null>(null);
  const [chosen, setChosen] = useState<FreeSlot | null>(null);
  const [taken, setTaken] = useState<FreeSlot[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // Rescheduling: the old booking fixes the service and suggests its center and doctor.
  useEffect(() => {
    if (!rescheduleId) return;
    must(api.GET("/bookings/{id}", { params: { path: { id: rescheduleId } } })).then(
      (booking) => {
        setOld(booking);
        setServiceId(booking.service_id ?? "");
        setCenterId(booking.center_id);
      },
      (err) => setError(describe(err, lang)),
    );
  }, [rescheduleId, lang]);

  const services = useMemo(
    () => [...(directory?.services.values() ?? [])].filter((s) => s.active && s.doctor_ids.length > 0),
    [directory],
  );

  const search = useCallback(async () => {
    if (!serviceId) return;
    setError(null);
    try {
      const result = await must(
        api.GET("/availability", {
          params: {
            query: {
              service_id: serviceId,
              center_id: centerId || undefined,
              doctor_id: doctorId || undefined,
              from: from ?? undefined,
              to: from ? addDays(from, DAYS - 1) : undefined,
            },
          },
        }),
      );
      setAvailability(result);
      if (!from) setFrom(result.from);
      setDay((current) => (current && result.days.some((d) => d.date === current) ? current : firstDayWithSlots(result)));
      return result;
    } catch (err) {
      setError(describe(err, lang));
    }
  }, [serviceId, centerId, doctorId, from, lang]);

  useEffect(() => {
    setChosen(null);
    void search();
  }, [search]);

  const center = (id: string) => availability?.centers.find((c) => c.id === id) ?? directory?.centers.get(id);
  const doctorName = (id: string) => availability?.doctors.find((d) => d.id === id)?.name ?? directory?.doctors.get(id)?.name ?? "";
  const zoneOf = (id: string) => center(id)?.timezone ?? "UTC";
  const slotsOfDay = availability?.days.find((d) => d.date === day)?.slots ?? [];
  const shownZone = centerId ? zoneOf(centerId) : availability?.centers[0]?.timezone;

  async function confirm(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!chosen) return;
    const reason = String(new FormData(e.currentTarget).get("reason") ?? "").trim() || undefined;
    const session = getSession();
    if (!session?.patientId) return;
    setBusy(true);
    setError(null);
    setTaken(null);
    const headers = { Prefer: WAIT, "Idempotency-Key": idempotencyKey() };
    try {
      const outcome = old
        ? await api.POST("/bookings/{id}/reschedule", {
            params: { path: { id: old.id }, header: headers },
            body: { start: chosen.start, doctor_id: chosen.doctor_id, center_id: chosen.center_id, reason },
          })
        : await api.POST("/bookings", {
            params: { header: headers },
            body: {
              patient_id: session.patientId,
              doctor_id: chosen.doctor_id,
              center_id: chosen.center_id,
              service_id: serviceId,
              start: chosen.start,
              reason,
            },
          });
      const data = outcome.data;
      if (data && "id" in data) {
        navigate(`/app/appointments/${data.id}?done=${old ? "rescheduled" : "confirmed"}`);
        return;
      }
      if (data && "booking_id" in data) {
        navigate(`/app/appointments/${data.booking_id}?done=pending`);
        return;
      }
      const problem = new ApiProblem(outcome.response.status, outcome.error as never);
      const rejection = problem.body?.error.details as { reason_code?: string } | null | undefined;
      if (problem.code === "booking_rejected" && rejection?.reason_code === "slot_taken") {
        // Someone else got it first: the next free slots from a fresh search.
        const fresh = await search();
        setTaken(fresh ? nextSlots(fresh, chosen.start, 6, chosen.doctor_id) : []);
        setChosen(null);
        return;
      }
      throw problem;
    } catch (err) {
      setError(t("rejected", { reason: describe(err, lang) }) + (old ? ` ${t("keepOld")}` : ""));
    } finally {
      setBusy(false);
    }
  }

  const slotLabel = (slot: FreeSlot) =>
    `${formatTime(slot.start, zoneOf(slot.center_id), lang)}${doctorId ? "" : ` · ${doctorName(slot.doctor_id)}`}`;

  return (
    <section aria-labelledby="book-title">
      <h1 id="book-title">{old ? t("rescheduleTitle") : t("bookTitle")}</h1>
      {welcome && <Notice kind="ok">{t("signedUp")}</Notice>}
      {directoryError != null && <Notice kind="error">{describe(directoryError, lang)}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      {old && (
        <p className="muted">
          {t("appointment")}: {formatDateTime(old.starts_at, zoneOf(old.center_id), lang)}
        </p>
      )}
      <div className="filters">
        <Select
          label={t("service")}
          value={serviceId}
          disabled={!!old}
          onChange={(e) => {
            setServiceId(e.target.value);
            setFrom(null);
          }}
        >
          <option value="">{t("chooseService")}</option>
          {services.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name} ({s.duration_minutes} {t("minutes")})
            </option>
          ))}
        </Select>
        <Select label={t("center")} value={centerId} onChange={(e) => setCenterId(e.target.value)} disabled={!serviceId}>
          <option value="">{t("chooseCenter")}</option>
          {(availability?.centers ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.name}
            </option>
          ))}
        </Select>
        <Select label={t("doctor")} value={doctorId} onChange={(e) => setDoctorId(e.target.value)} disabled={!serviceId}>
          <option value="">{t("anyDoctor")}</option>
          {(availability?.doctors ?? []).map((d) => (
            <option key={d.id} value={d.id}>
              {d.name} — {d.specialty}
            </option>
          ))}
        </Select>
      </div>

      {availability && serviceId && (
        <>
          <nav className="days" aria-label={t("day")}>
            <button
              type="button"
              onClick={() => setFrom(addDays(availability.from, -DAYS))}
              disabled={availability.from <= localDate(new Date(), shownZone ?? "UTC")}
            >
              ‹ {t("previous")}
            </button>
            <ul>
              {availability.days.map((d) => (
                <li key={d.date}>
                  <button
                    type="button"
                    aria-pressed={d.date === day}
                    className={d.slots.length ? "day" : "day empty"}
                    onClick={() => setDay(d.date)}
                  >
                    <span>{formatShortDate(d.date, lang)}</span>
                    <small>{d.slots.length}</small>
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" onClick={() => setFrom(addDays(availability.from, DAYS))}>
              {t("next")} ›
            </button>
          </nav>

          {taken && (
            <Notice kind="error">
              <p>{t("slotTaken")}</p>
              <ul className="slots" aria-label={t("nextSlots")}>
                {taken.map((slot) => (
                  <li key={slotKey(slot)}>
                    <button type="button" onClick={() => setChosen(slot)}>
                      {formatLocalDate(localDate(slot.start, zoneOf(slot.center_id)), lang)} {slotLabel(slot)}
                    </button>
                  </li>
                ))}
              </ul>
            </Notice>
          )}

          <h2>
            {t("freeSlots")}
            {day ? ` — ${formatLocalDate(day, lang)}` : ""}
          </h2>
          {shownZone && <p className="muted">{t("timesIn", { zone: zoneLabel(shownZone, lang) })}</p>}
          {slotsOfDay.length === 0 ? (
            <p>{t("noSlots")}</p>
          ) : (
            <ul className="slots" aria-label={t("freeSlots")}>
              {slotsOfDay.map((slot) => (
                <li key={slotKey(slot)}>
                  <button
                    type="button"
                    aria-pressed={chosen ? slotKey(chosen) === slotKey(slot) : false}
                    onClick={() => setChosen(slot)}
                  >
                    {slotLabel(slot)}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </>
      )}

      {availability && serviceId && centerId && !old && !chosen && (
        <JoinWaitlist serviceId={serviceId} centerId={centerId} doctorId={doctorId} timeZone={zoneOf(centerId)} />
      )}

      {chosen && (
        <form className="card confirm" onSubmit={confirm} aria-labelledby="confirm-title">
          <h2 id="confirm-title">{t("confirmTitle")}</h2>
          <dl>
            <dt>{t("service")}</dt>
            <dd>{availability?.service.name}</dd>
            <dt>{t("when")}</dt>
            <dd>{formatDateTime(chosen.start, zoneOf(chosen.center_id), lang)}</dd>
            <dt>{t("where")}</dt>
            <dd>
              {center(chosen.center_id)?.name} ({zoneLabel(zoneOf(chosen.center_id), lang, new Date(chosen.start))})
            </dd>
            <dt>{t("doctor")}</dt>
            <dd>{doctorName(chosen.doctor_id)}</dd>
          </dl>
          {!old && (
            <div className="field">
              <label htmlFor="reason">{t("reason")}</label>
              <input id="reason" name="reason" maxLength={500} />
            </div>
          )}
          <div className="actions">
            <button type="submit" className="primary" disabled={busy} autoFocus>
              {busy ? t("booking") : t("confirm")}
            </button>
            <button type="button" onClick={() => setChosen(null)} disabled={busy}>
              {t("back")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
