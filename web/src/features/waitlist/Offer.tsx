// A freed time offered from the waitlist (the link in the offer's email and SMS): what, when
// (in the center's zone), until when it is held; take it (a normal booking: every rule
// applies, the answer comes at once) or let it go to the next patient.
import { useEffect, useState } from "react";
import { Notice } from "../../components/ui";
import { ApiProblem, WAIT, api, must, type Schemas } from "../../lib/api/client";
import { useDirectory } from "../../lib/directory";
import { describe } from "../../lib/errors";
import { type Key, useLang, useT } from "../../lib/i18n";
import { Link, navigate } from "../../lib/router";
import { formatDateTime, formatTime } from "../../lib/time";

const STATUS: Record<string, Key> = {
  open: "offerOpen",
  accepted: "offerAccepted",
  taken: "offerTaken",
  failed: "offerFailed",
  declined: "offerDeclinedStatus",
  expired: "offerExpired",
};

export function Offer({ id }: { id: string }) {
  const t = useT();
  const lang = useLang();
  const { directory } = useDirectory();
  const [offer, setOffer] = useState<Schemas["Offer"] | null>(null);
  const [missing, setMissing] = useState(false);
  const [notice, setNotice] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const reload = () =>
    must(api.GET("/waitlist/offers/{id}", { params: { path: { id } } })).then(setOffer, (err) => {
      if (err instanceof ApiProblem && (err.status === 404 || err.status === 400)) setMissing(true);
      else setNotice({ kind: "error", text: describe(err, lang) });
    });
  useEffect(() => {
    setOffer(null);
    setMissing(false);
    void reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, lang]);

  async function take() {
    setBusy(true);
    setNotice(null);
    try {
      const answer = await must(
        api.POST("/waitlist/offers/{id}/accept", { params: { path: { id }, header: { Prefer: WAIT } } }),
      );
      // 201 with the confirmed booking, or 202 when the decision took longer than the wait
      if ("id" in answer) navigate(`/app/appointments/${answer.id}?done=confirmed`);
      else navigate(`/app/appointments/${answer.booking_id}?done=pending`);
    } catch (err) {
      // Booked meanwhile by someone else (or another rule said no): the entry keeps waiting.
      const rejected = err instanceof ApiProblem && err.code === "booking_rejected";
      setNotice({ kind: "error", text: rejected ? t("offerRejected") : describe(err, lang) });
      await reload();
    } finally {
      setBusy(false);
    }
  }

  async function decline() {
    setBusy(true);
    setNotice(null);
    try {
      setOffer(await must(api.POST("/waitlist/offers/{id}/decline", { params: { path: { id } } })));
      setNotice({ kind: "ok", text: t("offerDeclined") });
    } catch (err) {
      setNotice({ kind: "error", text: describe(err, lang) });
      await reload();
    } finally {
      setBusy(false);
    }
  }

  if (missing)
    return (
      <section aria-labelledby="offer-title">
        <h1 id="offer-title">{t("offerTitle")}</h1>
        <Notice kind="error">{t("notFound")}</Notice>
      </section>
    );
  if (!offer) return notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : <p>{t("loading")}</p>;
  const center = directory?.centers.get(offer.center_id);
  const zone = center?.timezone ?? "UTC";
  const open = offer.status === "open" && Date.parse(offer.hold_until) > Date.now();

  return (
    <section aria-labelledby="offer-title">
      <h1 id="offer-title">{t("offerTitle")}</h1>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <dl className="card">
        <dt>{t("service")}</dt>
        <dd>{directory?.services.get(offer.service_id)?.name ?? ""}</dd>
        <dt>{t("when")}</dt>
        <dd>{formatDateTime(offer.start, zone, lang)}</dd>
        <dt>{t("where")}</dt>
        <dd>{center?.name ?? ""}</dd>
        <dt>{t("doctor")}</dt>
        <dd>{directory?.doctors.get(offer.doctor_id)?.name ?? ""}</dd>
        <dt>{t("status")}</dt>
        <dd>
          <span className={`badge ${offer.status}`} data-testid="offer-status">
            {t(STATUS[offer.status] ?? "offerOpen")}
          </span>
        </dd>
      </dl>
      {open && (
        <>
          <p>{t("offerHeld", { time: formatTime(offer.hold_until, zone, lang) })}</p>
          <div className="actions">
            <button type="button" className="primary" onClick={take} disabled={busy} autoFocus>
              {busy ? t("booking") : t("offerTake")}
            </button>
            <button type="button" onClick={decline} disabled={busy}>
              {t("offerDecline")}
            </button>
          </div>
        </>
      )}
      {offer.booking_id && offer.status === "taken" && (
        <p>
          <Link href={`/app/appointments/${offer.booking_id}`}>{t("appointment")}</Link>
        </p>
      )}
      <p>
        <Link href="/app/waitlist">{t("navWaitlist")}</Link>
      </p>
    </section>
  );
}
