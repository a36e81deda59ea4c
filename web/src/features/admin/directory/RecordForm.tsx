// The one form of the directory, drawn from a list of FieldSpecs: a record's create and edit
// forms and a doctor's "add hours / time off / service" forms alike. The API's reasons show
// next to their fields and, all together, in an alert that takes the focus.
import { type FormEvent, type ReactNode, useEffect, useId, useRef, useState } from "react";
import { Field, Select } from "../../../components/ui";
import { ApiProblem } from "../../../lib/api/client";
import { reloadDirectory } from "../../../lib/directory";
import { describe } from "../../../lib/errors";
import { type Key, type Lang, dictionaries, translate, useLang, useT } from "../../../lib/i18n";
import { type FieldSpec, type Values, bodyOf, fieldErrors, initialValues } from "./form";
import { type Row, kinds } from "./kinds";

/** A failed call in words; a taken name, email or username said for the directory. */
export function problem(error: unknown, lang: Lang): string {
  if (error instanceof ApiProblem && error.code === "duplicate") return translate(lang, "dirDuplicate");
  return describe(error, lang);
}

/** A notice (as ui.tsx's Notice) that takes the keyboard's focus when it shows: a result or an
 * error to read first. */
export function Focused({ kind, children }: { kind: "error" | "ok"; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => ref.current?.focus(), [children]);
  return (
    <div ref={ref} tabIndex={-1} className={`notice notice-${kind} focus-target`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

const isKey = (label: string): label is Key => label in dictionaries.es;

/** A record found by a search (a center, a service): a search box and the matches to pick. */
function RecordPicker({
  spec,
  value,
  error,
  onChange,
}: {
  spec: FieldSpec;
  value: string;
  error?: string;
  onChange: (value: string) => void;
}) {
  const t = useT();
  const lang = useLang();
  const kind = kinds[spec.pick ?? "centers"];
  const [q, setQ] = useState("");
  const [found, setFound] = useState<Row[]>([]);
  const [failed, setFailed] = useState<string | null>(null);
  const id = useId();

  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      kind.list({ q: q.trim() || undefined, active: true, page: 1, per_page: 50 }).then(
        (page) => {
          if (!live) return;
          setFound(page.items);
          setFailed(null);
          // The first match is chosen unless "none" is allowed or the choice is still there.
          if (!spec.none && !page.items.some((r) => r.id === value)) onChange(page.items[0]?.id ?? "");
        },
        (err) => live && setFailed(problem(err, lang)),
      );
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // Searched again when the words change, not on each choice.
  }, [q, kind, lang]);

  // A form emptied after an add chooses the first match again.
  useEffect(() => {
    if (!spec.none && value === "" && found[0]) onChange(found[0].id);
  }, [spec.none, value, found, onChange]);

  return (
    <div className="picker" aria-describedby={failed ? `${id}-failed` : undefined}>
      <Field label={t("findOne", { what: t(spec.label).toLowerCase() })} type="search" value={q} onChange={(e) => setQ(e.target.value)} />
      <Select label={t(spec.label)} name={spec.name} value={value} error={error} required={spec.required} onChange={(e) => onChange(e.target.value)}>
        {spec.none && <option value="">{t(spec.none)}</option>}
        {!spec.none && found.length === 0 && <option value="">{t("noMatches")}</option>}
        {found.map((r) => (
          <option key={r.id} value={r.id}>
            {kind.label(r)}
            {"timezone" in r ? ` — ${String(r.timezone)}` : ""}
          </option>
        ))}
      </Select>
      {failed && (
        <small id={`${id}-failed`} className="field-error">
          {failed}
        </small>
      )}
    </div>
  );
}

export function RecordForm({
  fields,
  label,
  submit: submitLabel,
  record,
  save,
  onSaved,
  idPrefix,
}: {
  fields: readonly FieldSpec[];
  label: string;
  submit: Key;
  /** The record edited (only what changed is sent); none: a create. */
  record?: object;
  save: (body: Record<string, unknown>) => Promise<unknown>;
  onSaved: (saved: unknown) => void;
  /** Tells apart the datalists of two forms on one page. */
  idPrefix: string;
}) {
  const t = useT();
  const lang = useLang();
  const [original] = useState(() => (record ? initialValues(fields, record) : undefined));
  const [values, setValues] = useState<Values>(() => original ?? initialValues(fields));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setErrors({});
    try {
      const saved = await save(bodyOf(fields, values, original));
      reloadDirectory();
      if (!record) setValues(initialValues(fields));
      onSaved(saved);
    } catch (err) {
      const { byField } = fieldErrors(
        err,
        fields.map((f) => f.name),
      );
      setErrors(byField);
      setError(problem(err, lang));
    } finally {
      setBusy(false);
    }
  }

  const input = (f: FieldSpec) => {
    const common = { name: f.name, value: values[f.name] ?? "", error: errors[f.name], required: f.required };
    const onChange = (value: string) => setValues((v) => ({ ...v, [f.name]: value }));
    if (f.input === "pick") return <RecordPicker key={f.name} spec={f} value={common.value} error={common.error} onChange={onChange} />;
    if (f.input === "select") {
      return (
        <Select key={f.name} label={t(f.label)} {...common} onChange={(e) => onChange(e.target.value)}>
          {f.options?.map((o) => (
            <option key={o.value} value={o.value}>
              {isKey(o.label) ? t(o.label) : o.label}
            </option>
          ))}
        </Select>
      );
    }
    const list = f.suggestions ? `${idPrefix}-${f.name}-list` : undefined;
    const time = f.input === "time";
    return (
      <div key={f.name}>
        <Field
          label={t(f.label)}
          hint={f.hint && t(f.hint)}
          type={time || f.input === "minutes" ? "text" : (f.input ?? "text")}
          inputMode={time ? "numeric" : undefined}
          placeholder={time ? "HH:MM" : undefined}
          maxLength={f.maxLength}
          list={list}
          autoComplete={f.input === "password" ? "new-password" : "off"}
          {...common}
          onChange={(e) => onChange(e.target.value)}
        />
        {list && (
          <datalist id={list}>
            {f.suggestions?.().map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        )}
      </div>
    );
  };

  // Checked by the API, not the browser: its reasons are the ones shown, in words.
  return (
    <form onSubmit={submit} className="card" aria-label={label} noValidate>
      {error && <Focused kind="error">{error}</Focused>}
      <div className="form-grid">{fields.map(input)}</div>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {t(submitLabel)}
        </button>
      </div>
    </form>
  );
}
