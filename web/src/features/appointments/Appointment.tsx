// One appointment: what, when (in the center's zone), where, with whom; cancel or reschedule
// while it is upcoming. Another patient's id answers 404 from the API: "not found", nothing else.
import { useEffect, useState } from "react";
import { Notice } from "../../components/ui";
import { ApiProblem, WAIT, api, idempotencyKey, must, type Schemas } from "../../lib/api/client";
import { useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { type Key, useLang, useT } from "../../lib/i18n";
import { Link, navigate } from "../../lib/router";
import { describeBooking, isUpcoming, statusLabel } from "./Appointments";

export function Appointment({ id, done }: { id: string; done: string | null }) {
  const t = useT();
  const lang = useLang();
  const { directory } = useDirectory();
  const [booking, setBooking] = useState<Schemas["Booking"] | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setBooking(null);
    setMissing(false);
    must(api.GET("/bookings/{id}", { params: { path: { id } } })).then(setBooking, (err) => {
      if (err instanceof ApiProblem && (err.status === 404 || err.status === 400)) setMissing(true);
      else setError(describe(err, lang));
    });
  }, [id, lang]);

  async function cancel() {
    setBusy(true);
    setError(null);
    try {
      const result = await must(
        api.POST("/bookings/{id}/cancel", {
          params: { path: { id }, header: { Prefer: WAIT, "Idempotency-Key": idempotencyKey() } },
        }),
      );
      setAsking(false);
      if ("id" in result) setBooking(result);
      navigate(`/app/appointments/${id}?done=cancelled`, { replace: true });
      setBooking(await must(api.GET("/bookings/{id}", { params: { path: { id } } })));
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setBusy(false);
    }
  }

  if (missing)
    return (
      <section aria-labelledby="appointment-title">
        <h1 id="appointment-title">{t("appointment")}</h1>
        <Notice kind="error">{t("notFound")}</Notice>
        <Link href="/app/appointments">{t("navAppointments")}</Link>
      </section>
    );
  if (!booking) return error ? <Notice kind="error">{error}</Notice> : <p>{t("loading")}</p>;
  const d = describeBooking(booking, directory, lang);
  const doneKey = ({ confirmed: "confirmed", rescheduled: "rescheduled", cancelled: "cancelled", pending: "pendingStill" } as const)[
    done as "confirmed"
  ] as Key | undefined;

  return (
    <section aria-labelledby="appointment-title">
      <h1 id="appointment-title">
        {t("appointment")}: {d.service}
      </h1>
      {doneKey && booking.status !== "rejected" && <Notice kind="ok">{t(doneKey)}</Notice>}
      {booking.status === "rejected" && (
        <Notice kind="error">{t("rejected", { reason: booking.reason_message ?? booking.reason_code ?? "" })}</Notice>
      )}
      {error && <Notice kind="error">{error}</Notice>}
      <dl className="card">
        <dt>{t("status")}</dt>
        <dd>
          <span className={`badge ${booking.status}`} data-testid="status">
            {statusLabel(booking, t)}
          </span>
        </dd>
        <dt>{t("when")}</dt>
        <dd>{d.when}</dd>
        <dt>{t("where")}</dt>
        <dd>{d.center}</dd>
        <dt>{t("doctor")}</dt>
        <dd>{d.doctor}</dd>
      </dl>
      {isUpcoming(booking) && !booking.attendance && (
        <div className="actions">
          <Link href={`/app/book?reschedule=${booking.id}`} className="button">
            {t("reschedule")}
          </Link>
          {!asking ? (
            <button type="button" className="danger" onClick={() => setAsking(true)}>
              {t("cancel")}
            </button>
          ) : (
            <div role="group" aria-label={t("cancelConfirm")} className="confirm-inline">
              <span>{t("cancelConfirm")}</span>
              <button type="button" className="danger" onClick={cancel} disabled={busy} autoFocus>
                {t("cancel")}
              </button>
              <button type="button" onClick={() => setAsking(false)} disabled={busy}>
                {t("back")}
              </button>
            </div>
          )}
        </div>
      )}
      <p>
        <Link href="/app/appointments">{t("navAppointments")}</Link>
      </p>
    </section>
  );
}
