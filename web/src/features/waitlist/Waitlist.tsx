// The waitlist, for a patient: join it from the booking page when no free time suits (a
// service at a center, one doctor or any, between two dates), see the lists they are on and
// leave one. When a time frees, the processor offers it by email and SMS with a link to the
// offer page (./Offer.tsx).
import { type FormEvent, useEffect, useState } from "react";
import { Field, Notice } from "../../components/ui";
import { api, must, type Schemas } from "../../lib/api/client";
import { useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { type Key, useLang, useT } from "../../lib/i18n";
import { Link } from "../../lib/router";
import { getSession } from "../../lib/session";
import { addDays, formatLocalDate, localDate } from "../../lib/time";

/** Longest span an entry may wait over (the API's limit). */
const MAX_DAYS = 92;

/** The "join the waitlist" card of the booking page, for the service, center and doctor (or
 * any) chosen there. */
export function JoinWaitlist({ serviceId, centerId, doctorId, timeZone }: { serviceId: string; centerId: string; doctorId: string; timeZone: string }) {
  const t = useT();
  const lang = useLang();
  const today = localDate(new Date(), timeZone);
  const [from, setFrom] = useState(today);
  const [to, setTo] = useState(addDays(today, 14));
  const [joined, setJoined] = useState<Schemas["Entry"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setJoined(null);
    setError(null);
  }, [serviceId, centerId, doctorId]);

  async function join(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setJoined(
        await must(
          api.POST("/waitlist", {
            body: { service_id: serviceId, center_id: centerId, doctor_id: doctorId || undefined, from, to },
          }),
        ),
      );
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={join} aria-labelledby="waitlist-join-title">
      <h2 id="waitlist-join-title">{t("waitlistJoinTitle")}</h2>
      <p>{t("waitlistJoinIntro")}</p>
      {joined ? (
        <Notice kind="ok">
          {t("waitlistJoined")} <Link href="/app/waitlist">{t("navWaitlist")}</Link>
        </Notice>
      ) : (
        <>
          <div className="filters">
            <Field label={t("waitlistFrom")} type="date" value={from} min={today} onChange={(e) => setFrom(e.target.value)} required />
            <Field
              label={t("waitlistTo")}
              type="date"
              value={to}
              min={from}
              max={addDays(from, MAX_DAYS - 1)}
              onChange={(e) => setTo(e.target.value)}
              required
            />
          </div>
          {error && <Notice kind="error">{error}</Notice>}
          <button type="submit" disabled={busy}>
            {t("waitlistJoin")}
          </button>
        </>
      )}
    </form>
  );
}

const ENTRY_STATUS: Record<string, Key> = {
  waiting: "waitlistWaiting",
  booked: "waitlistBooked",
  left: "waitlistLeftStatus",
  lapsed: "waitlistLapsed",
};

/** The lists a patient is on (waiting first), each with a way out while it waits. */
export function WaitlistPage() {
  const t = useT();
  const lang = useLang();
  const { directory } = useDirectory();
  const [entries, setEntries] = useState<Schemas["Entry"][] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [left, setLeft] = useState(false);

  const reload = () =>
    must(api.GET("/waitlist", { params: { query: { patient_id: getSession()?.patientId, per_page: 100 } } })).then(
      (page) => setEntries([...page.items].sort((a, b) => Number(b.status === "waiting") - Number(a.status === "waiting"))),
      (err) => setError(describe(err, lang)),
    );
  useEffect(() => {
    void reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lang]);

  async function leave(id: string) {
    setError(null);
    try {
      await must(api.DELETE("/waitlist/{id}", { params: { path: { id } } }));
      setLeft(true);
      await reload();
    } catch (err) {
      setError(describe(err, lang));
    }
  }

  return (
    <section aria-labelledby="waitlist-title">
      <h1 id="waitlist-title">{t("waitlistTitle")}</h1>
      {left && <Notice kind="ok">{t("waitlistLeft")}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      {entries === null ? (
        !error && <p>{t("loading")}</p>
      ) : entries.length === 0 ? (
        <p>
          {t("waitlistEmpty")} <Link href="/app/book">{t("navBook")}</Link>
        </p>
      ) : (
        <ul className="cards" aria-label={t("waitlistTitle")}>
          {entries.map((e) => (
            <li key={e.id} className="card">
              <h2>{directory?.services.get(e.service_id)?.name ?? ""}</h2>
              <p>
                {directory?.centers.get(e.center_id)?.name ?? ""} ·{" "}
                {e.doctor_id ? (directory?.doctors.get(e.doctor_id)?.name ?? "") : t("anyDoctor")}
              </p>
              <p>
                {formatLocalDate(e.from, lang)} – {formatLocalDate(e.to, lang)}{" "}
                <span className={`badge ${e.status}`}>{t(ENTRY_STATUS[e.status] ?? "waitlistWaiting")}</span>
              </p>
              {e.status === "booked" && e.booking_id && <Link href={`/app/appointments/${e.booking_id}`}>{t("appointment")}</Link>}
              {e.status === "waiting" && (
                <button type="button" className="danger" onClick={() => leave(e.id)}>
                  {t("waitlistLeave")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
