import { type FormEvent, useState } from "react";
import { Field, Notice, Select } from "../../components/ui";
import { api, must } from "../../lib/api/client";
import { describe } from "../../lib/errors";
import { type Lang, setLang, useLang, useT } from "../../lib/i18n";
import { Link, navigate } from "../../lib/router";
import { signIn } from "./Login";

export function Signup() {
  const t = useT();
  const lang = useLang();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const field = (name: string) => String(form.get(name) ?? "").trim();
    const email = field("email");
    const language = field("language") as Lang;
    setBusy(true);
    setError(null);
    try {
      const token = await must(
        api.POST("/auth/signup", {
          body: {
            name: field("name"),
            email,
            phone: field("phone") || null,
            language,
            password: String(form.get("password") ?? ""),
          },
        }),
      );
      signIn(token, email);
      setLang(language);
      navigate("/app/book?welcome=1", { replace: true });
    } catch (err) {
      setError(describe(err, lang));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card narrow" aria-labelledby="signup-title">
      <h1 id="signup-title">{t("signupTitle")}</h1>
      {error && <Notice kind="error">{error}</Notice>}
      <form onSubmit={onSubmit}>
        <Field label={t("name")} name="name" autoComplete="name" required maxLength={200} autoFocus />
        <Field label={t("email")} name="email" type="email" autoComplete="email" required />
        <Field label={t("phone")} name="phone" type="tel" autoComplete="tel" hint={t("phoneHint")} pattern="\+[1-9][0-9]{6,14}" />
        <Select label={t("preferredLanguage")} name="language" defaultValue={lang}>
          <option value="es">Español</option>
          <option value="en">English</option>
        </Select>
        <Field
          label={t("password")}
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={10}
          hint={t("passwordHint")}
        />
        <button type="submit" className="primary" disabled={busy}>
          {t("signup")}
        </button>
      </form>
      <p>
        {t("haveAccount")} <Link href="/app/login">{t("login")}</Link>
      </p>
    </section>
  );
}
