// The admin's directory: one generic list (search, active filter, pages), one generic form
// (create, edit) and one record page (edit, deactivate or activate again) for every kind in
// kinds.ts; a doctor's page adds their hours, time off and services (DoctorAgenda.tsx).
import { type FormEvent, useEffect, useState } from "react";
import { Field, Select } from "../../../components/ui";
import { reloadDirectory } from "../../../lib/directory";
import { api, mustDo, type Schemas } from "../../../lib/api/client";
import { useLang, useT } from "../../../lib/i18n";
import { Link, navigate, useLocation } from "../../../lib/router";
import { DoctorAgenda } from "./DoctorAgenda";
import { type FieldSpec, PER_PAGE, activeFilter, fieldsFor, listHref, listState, pageCount } from "./form";
import { KINDS, type KindName, type Page, type Row, kinds } from "./kinds";
import { Focused, RecordForm, problem } from "./RecordForm";

export const BASE = "/app/admin/directory";
const hrefOf = (kind: KindName, id?: string) => `${BASE}/${kind}${id ? `/${encodeURIComponent(id)}` : ""}`;

function KindNav({ current }: { current: KindName }) {
  const t = useT();
  return (
    <nav aria-label={t("navDirectory")} className="subnav">
      <ul>
        {KINDS.map((k) => (
          <li key={k}>
            <Link href={hrefOf(k)} aria-current={k === current ? "page" : undefined}>
              {t(kinds[k].title)}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function StatusBadge({ active }: { active: boolean }) {
  const t = useT();
  return <span className={`badge ${active ? "confirmed" : "cancelled"}`}>{t(active ? "active" : "inactive")}</span>;
}

/** `/app/admin/directory/:kind`: search, filter, a page of records, links to each. */
export function DirectoryList({ kind: name }: { kind: KindName }) {
  const t = useT();
  const lang = useLang();
  const kind = kinds[name];
  const { query } = useLocation();
  const state = listState(query);
  const [q, setQ] = useState(state.q);
  const [result, setResult] = useState<Page<Row> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = listHref("", state);

  useEffect(() => setQ(state.q), [name, state.q]);
  useEffect(() => {
    let live = true;
    setError(null);
    kind
      .list({ q: state.q.trim() || undefined, active: activeFilter(state), page: state.page, per_page: PER_PAGE })
      .then(
        (page) => live && setResult(page),
        (err) => live && setError(problem(err, lang)),
      );
    return () => {
      live = false;
    };
    // `key` stands for the whole state.
  }, [name, key, lang]);

  const go = (next: Partial<typeof state>) => navigate(listHref(hrefOf(name), { ...state, ...next }), { replace: true });
  const search = (e: FormEvent) => {
    e.preventDefault();
    go({ q, page: 1 });
  };
  const pages = result ? pageCount(result.total, result.per_page) : 1;

  return (
    <section aria-labelledby="dir-title">
      <KindNav current={name} />
      <h1 id="dir-title">{t(kind.title)}</h1>
      <div className="actions">
        <Link href={`${hrefOf(name)}/new`} className="button primary">
          {t(kind.add)}
        </Link>
      </div>
      <form role="search" onSubmit={search} className="card filters">
        <Field label={t("search")} type="search" value={q} onChange={(e) => setQ(e.target.value)} hint={t(`search_${name}`)} />
        <Select label={t("show")} value={state.active} onChange={(e) => go({ active: e.target.value as typeof state.active, page: 1 })}>
          <option value="active">{t("onlyActive")}</option>
          <option value="inactive">{t("onlyInactive")}</option>
          <option value="all">{t("all")}</option>
        </Select>
        <div className="field">
          <span aria-hidden="true">&nbsp;</span>
          <button type="submit">{t("search")}</button>
        </div>
      </form>
      {error && <Focused kind="error">{error}</Focused>}
      {result && (
        <>
          <p role="status" className="muted">
            {t("resultsCount", { total: result.total, page: result.page, pages })}
          </p>
          {result.items.length > 0 && (
            <div className="grid-wrap">
              <table className="report directory stack">
                <caption className="sr-only">{t(kind.title)}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("dirName")}</th>
                    {kind.columns.map((c) => (
                      <th scope="col" key={c.label}>
                        {t(c.label)}
                      </th>
                    ))}
                    <th scope="col">{t("status")}</th>
                  </tr>
                </thead>
                <tbody>
                  {result.items.map((row) => (
                    <tr key={row.id}>
                      <th scope="row">
                        <Link href={hrefOf(name, row.id)}>{kind.label(row)}</Link>
                      </th>
                      {kind.columns.map((c) => (
                        <td key={c.label} data-label={t(c.label)}>
                          {c.value(row, lang)}
                        </td>
                      ))}
                      <td data-label={t("status")}>
                        <StatusBadge active={kind.active(row)} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {pages > 1 && (
            <div className="actions">
              <button type="button" disabled={state.page <= 1} onClick={() => go({ page: state.page - 1 })}>
                ‹ {t("previous")}
              </button>
              <button type="button" disabled={state.page >= pages} onClick={() => go({ page: state.page + 1 })}>
                {t("next")} ›
              </button>
            </div>
          )}
        </>
      )}
      {!result && !error && <p>{t("loading")}</p>}
    </section>
  );
}

/** `/app/admin/directory/:kind/new`. */
export function NewRecord({ kind: name }: { kind: KindName }) {
  const t = useT();
  const kind = kinds[name];
  return (
    <section aria-labelledby="dir-title">
      <KindNav current={name} />
      <p>
        <Link href={hrefOf(name)}>‹ {t(kind.title)}</Link>
      </p>
      <h1 id="dir-title">{t(kind.add)}</h1>
      <RecordForm
        fields={fieldsFor(kind.fields, "create")}
        label={t(kind.add)}
        submit="create"
        idPrefix={name}
        save={(body) => kind.create(body)}
        onSaved={(row) => navigate(`${hrefOf(name, (row as Row).id)}?created=1`, { replace: true })}
      />
    </section>
  );
}

/** `/app/admin/directory/:kind/:id`: the record's form, its state and what can be done to it. */
export function RecordPage({ kind: name, id, created }: { kind: KindName; id: string; created: boolean }) {
  const t = useT();
  const lang = useLang();
  const kind = kinds[name];
  const [record, setRecord] = useState<Row | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(created ? t("createdOne") : null);
  const [confirming, setConfirming] = useState(false);
  const [version, setVersion] = useState(0);

  // "Created" is said once: a reload of the page does not say it again.
  useEffect(() => {
    if (created) navigate(hrefOf(name, id), { replace: true });
  }, [created, name, id]);

  useEffect(() => {
    let live = true;
    kind.get(id).then(
      (r) => live && setRecord(r),
      (err) => live && setError(problem(err, lang)),
    );
    return () => {
      live = false;
    };
  }, [kind, id, lang]);

  async function setActive(active: boolean) {
    setError(null);
    setDone(null);
    setConfirming(false);
    try {
      const r = await kind.setActive(id, active);
      reloadDirectory();
      setRecord(r);
      setVersion((v) => v + 1);
      setDone(t(active ? "activatedOne" : "deactivatedOne"));
    } catch (err) {
      setError(problem(err, lang));
    }
  }

  const active = record ? kind.active(record) : true;
  return (
    <section aria-labelledby="dir-title">
      <KindNav current={name} />
      <p>
        <Link href={hrefOf(name)}>‹ {t(kind.title)}</Link>
      </p>
      <h1 id="dir-title">
        {t(kind.one)}: {record ? kind.label(record) : "…"} {record && <StatusBadge active={active} />}
      </h1>
      {done && <Focused kind="ok">{done}</Focused>}
      {error && <Focused kind="error">{error}</Focused>}
      {record && (
        <>
          <RecordForm
            key={version}
            fields={fieldsFor(kind.fields, "edit")}
            label={t("editTitle")}
            submit="save"
            idPrefix={name}
            record={record}
            save={(body) => kind.update(record.id, body)}
            onSaved={(r) => {
              setRecord(r as Row);
              setVersion((v) => v + 1);
              setError(null);
              setDone(t("savedOne"));
            }}
          />
          <div className="actions">
            {!active ? (
              <button type="button" onClick={() => setActive(true)}>
                {t("activate")}
              </button>
            ) : confirming ? (
              <div className="confirm-inline" role="group" aria-label={t("deactivate")}>
                <span>{t("deactivateConfirm", { name: kind.label(record) })}</span>
                <button type="button" className="danger" onClick={() => setActive(false)} autoFocus>
                  {t("deactivateYes")}
                </button>
                <button type="button" onClick={() => setConfirming(false)}>
                  {t("keep")}
                </button>
              </div>
            ) : (
              <button type="button" className="danger" onClick={() => setConfirming(true)}>
                {t("deactivate")}
              </button>
            )}
          </div>
          {name === "doctors" && <DoctorAgenda doctorId={record.id} onChange={() => setDone(null)} />}
          {name === "users" && <NewPassword userId={record.id} />}
        </>
      )}
    </section>
  );
}

const passwordFields: readonly FieldSpec<keyof Schemas["NewPassword"]>[] = [
  { name: "password", label: "newPassword", input: "password", required: true, hint: "newPasswordHint" },
];

/** A user's new password (every token they hold is revoked: they sign in again). */
function NewPassword({ userId }: { userId: string }) {
  const t = useT();
  const [done, setDone] = useState(false);
  return (
    <section aria-labelledby="password-title" className="panel">
      <h2 id="password-title">{t("newPassword")}</h2>
      {done && <Focused kind="ok">{t("passwordSet")}</Focused>}
      <RecordForm
        fields={passwordFields}
        label={t("newPassword")}
        submit="save"
        idPrefix="password"
        save={(body) => mustDo(api.POST("/users/{id}/password", { params: { path: { id: userId } }, body: body as Schemas["NewPassword"] }))}
        onSaved={() => setDone(true)}
      />
    </section>
  );
}
