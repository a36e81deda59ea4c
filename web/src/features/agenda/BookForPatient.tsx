// The desk books a free slot for a patient: find them by name, email or phone, or register a
// new one, then confirm (the outcome at once, `Prefer: wait`).
import { type FormEvent, useEffect, useRef, useState } from "react";
import { Field, Notice, Select, useIntoView } from "../../components/ui";
import { WAIT, api, idempotencyKey, must, type Schemas } from "../../lib/api/client";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { formatDateTime } from "../../lib/time";
import type { FreeSlot } from "./grid";

type Patient = Schemas["Patient"];

export function BookForPatient({
  slot,
  serviceId,
  doctorName,
  zone,
  onClose,
  onBooked,
}: {
  slot: FreeSlot;
  serviceId: string;
  doctorName: string;
  zone: string;
  onClose: () => void;
  onBooked: (text: string) => void;
}) {
  const t = useT();
  const lang = useLang();
  const [q, setQ] = useState("");
  const [found, setFound] = useState<Patient[] | null>(null);
  const [chosen, setChosen] = useState<Patient | null>(null);
  const [registering, setRegistering] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const panel = useRef<HTMLElement>(null);
  useIntoView(panel, slot);

  useEffect(() => {
    const query = q.trim();
    if (query.length < 2) return setFound(null);
    const timer = setTimeout(() => {
      must(api.GET("/patients", { params: { query: { q: query, status: "ACTIVE", per_page: 10 } } })).then(
        (page) => setFound(page.items),
        (err) => setError(describe(err, lang)),
      );
    }, 250);
    return () => clearTimeout(timer);
  }, [q, lang]);

  async function register(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const field = (name: string) => String(form.get(name) ?? "").trim() || null;
    setError(null);
    try {
      const patient = await must(
        api.POST("/patients", {
          body: { name: field("name") ?? "", email: field("email"), phone: field("phone"), language: field("language") },
        }),
      );
      setChosen(patient);
      setRegistering(false);
    } catch (err) {
      setError(describe(err, lang));
    }
  }

  async function confirm() {
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      await must(
        api.POST("/bookings", {
          params: { header: { Prefer: WAIT, "Idempotency-Key": idempotencyKey() } },
          body: {
            patient_id: chosen.id,
            doctor_id: slot.doctor_id,
            center_id: slot.center_id,
            service_id: serviceId,
            start: slot.start,
          },
        }),
      );
      onBooked(t("booked", { name: chosen.name }));
    } catch (err) {
      setError(t("rejected", { reason: describe(err, lang) }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card panel" aria-labelledby="book-for-title" ref={panel}>
      <h2 id="book-for-title">{t("bookFor")}</h2>
      <p>
        {formatDateTime(slot.start, zone, lang)} · {doctorName}
      </p>
      {error && <Notice kind="error">{error}</Notice>}
      {chosen ? (
        <p>
          {t("patient")}: <strong>{chosen.name}</strong> {chosen.email ?? ""} {chosen.phone ?? ""}{" "}
          <button type="button" onClick={() => setChosen(null)}>
            {t("back")}
          </button>
        </p>
      ) : registering ? (
        <form onSubmit={register} aria-label={t("newPatient")}>
          <Field label={t("name")} name="name" required maxLength={200} autoFocus />
          <Field label={t("email")} name="email" type="email" />
          <Field label={t("phone")} name="phone" type="tel" hint={t("phoneHint")} />
          <Select label={t("preferredLanguage")} name="language" defaultValue="es">
            <option value="es">Español</option>
            <option value="en">English</option>
          </Select>
          <div className="actions">
            <button type="submit" className="primary">
              {t("register")}
            </button>
            <button type="button" onClick={() => setRegistering(false)}>
              {t("back")}
            </button>
          </div>
        </form>
      ) : (
        <>
          <Field label={t("searchPatient")} type="search" value={q} onChange={(e) => setQ(e.target.value)} autoFocus />
          {found && found.length === 0 && <p>{t("noPatients")}</p>}
          {found && found.length > 0 && (
            <ul className="results" aria-label={t("patient")}>
              {found.map((p) => (
                <li key={p.id}>
                  <span>
                    {p.name} <span className="muted">{[p.email, p.phone].filter(Boolean).join(" · ")}</span>
                  </span>
                  <button type="button" onClick={() => setChosen(p)} aria-label={`${t("select")}: ${p.name}`}>
                    {t("select")}
                  </button>
                </li>
              ))}
            </ul>
          )}
          <button type="button" onClick={() => setRegistering(true)}>
            {t("newPatient")}
          </button>
        </>
      )}
      <div className="actions">
        <button type="button" className="primary" onClick={confirm} disabled={!chosen || busy}>
          {busy ? t("booking") : t("confirm")}
        </button>
        <button type="button" onClick={onClose} disabled={busy}>
          {t("close")}
        </button>
      </div>
    </section>
  );
}
