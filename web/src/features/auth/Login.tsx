import { type FormEvent, useState } from "react";
import { Field, Notice } from "../../components/ui";
import { api, must, type Schemas } from "../../lib/api/client";
import { describe } from "../../lib/errors";
import { useLang, useT } from "../../lib/i18n";
import { Link, navigate } from "../../lib/router";
import { lastEnd, startSession } from "../../lib/session";

/** Starts a session from a token answer (login or sign-up). */
export function signIn(token: Schemas["TokenResponse"], username: string) {
  startSession({
    token: token.access_token,
    expiresAt: Date.now() + token.expires_in * 1000,
    role: token.role,
    userId: token.user_id,
    username,
    patientId: token.patient_id ?? undefined,
    doctorId: token.doctor_id ?? undefined,
  });
}

export function Login({ next }: { next: string | null }) {
  const t = useT();
  const lang = useLang();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const username = String(form.get("username") ?? "");
    setBusy(true);
    setError(null);
    try {
      const token = await must(api.POST("/auth/login", { body: { username, password: String(form.get("password") ?? "") } }));
      signIn(token, username);
      // Only a page of this app: never an address from elsewhere.
      navigate(next?.startsWith("/app/") ? next : "/app", { replace: true });
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card narrow" aria-labelledby="login-title">
      <h1 id="login-title">{t("loginTitle")}</h1>
      {lastEnd() === "expired" && <Notice kind="info">{t("sessionExpired")}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
      <form onSubmit={onSubmit}>
        <Field label={t("username")} name="username" autoComplete="username" required autoFocus />
        <Field label={t("password")} name="password" type="password" autoComplete="current-password" required />
        <button type="submit" className="primary" disabled={busy}>
          {t("login")}
        </button>
      </form>
      <p>
        {t("noAccount")} <Link href="/app/signup">{t("signup")}</Link>
      </p>
    </section>
  );
}
