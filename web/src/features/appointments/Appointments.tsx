// The patient's appointments: upcoming (pending or confirmed, not started) and the rest
// (past, cancelled, rejected), newest first.
import { useEffect, useState } from "react";
import { Notice } from "../../components/ui";
import { api, must, type Schemas } from "../../lib/api/client";
import { type Directory, useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { type Key, type Lang, useLang, useT } from "../../lib/i18n";
import { Link } from "../../lib/router";
import { getSession } from "../../lib/session";
import { formatDateTime } from "../../lib/time";

type Booking = Schemas["Booking"];

export function isUpcoming(b: Booking, now = Date.now()): boolean {
  return (b.status === "confirmed" || b.status === "pending") && new Date(b.starts_at).getTime() > now;
}

export function statusLabel(b: Booking, t: (k: Key) => string): string {
  if (b.attendance === "attended" || b.attendance === "no_show") return t(b.attendance);
  const key = `status_${b.status}` as Key;
  return t(key) ?? b.status;
}

export function describeBooking(b: Booking, directory: Directory | null, lang: Lang) {
  const center = directory?.centers.get(b.center_id);
  return {
    when: formatDateTime(b.starts_at, center?.timezone ?? "UTC", lang),
    center: center?.name ?? "",
    doctor: directory?.doctors.get(b.doctor_id)?.name ?? "",
    service: (b.service_id && directory?.services.get(b.service_id)?.name) || b.reason || "",
  };
}

export function Appointments() {
  const t = useT();
  const lang = useLang();
  const { directory } = useDirectory();
  const [bookings, setBookings] = useState<Booking[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const patientId = getSession()?.patientId;
    must(api.GET("/bookings", { params: { query: { patient_id: patientId, sort: "-starts_at", per_page: 200 } } })).then(
      (page) => setBookings(page.items),
      (err) => setError(describe(err, lang)),
    );
  }, [lang]);

  if (error) return <Notice kind="error">{error}</Notice>;
  if (!bookings) return <p>{t("loading")}</p>;
  const upcoming = bookings.filter((b) => isUpcoming(b)).reverse();
  const past = bookings.filter((b) => !isUpcoming(b));

  const list = (items: Booking[], empty: string, label: string) =>
    items.length === 0 ? (
      <p>{empty}</p>
    ) : (
      <ul className="appointments" aria-label={label}>
        {items.map((b) => {
          const d = describeBooking(b, directory, lang);
          return (
            <li key={b.id} className={`appointment status-${b.status}`}>
              <div>
                <strong>{d.service}</strong>
                <span>{d.when}</span>
                <span className="muted">
                  {d.center} · {d.doctor}
                </span>
              </div>
              <span className="badge">{statusLabel(b, t)}</span>
              <Link href={`/app/appointments/${b.id}`} aria-label={`${t("details")}: ${d.service}, ${d.when}`}>
                {t("details")}
              </Link>
            </li>
          );
        })}
      </ul>
    );

  return (
    <section aria-labelledby="appointments-title">
      <h1 id="appointments-title">{t("navAppointments")}</h1>
      <p>
        <Link href="/app/book" className="button primary">
          {t("navBook")}
        </Link>
      </p>
      <h2>{t("upcoming")}</h2>
      {list(upcoming, t("noUpcoming"), t("upcoming"))}
      <h2>{t("past")}</h2>
      {list(past, t("noPast"), t("past"))}
    </section>
  );
}
