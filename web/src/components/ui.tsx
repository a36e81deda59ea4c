// Shared pieces: form fields with their labels and hints, alerts read out by screen readers.
import { type InputHTMLAttributes, type ReactNode, type RefObject, type SelectHTMLAttributes, useEffect, useId } from "react";

/** The ids an input is described by: its hint and its error, when it has them. */
function describedBy(id: string, hint?: string, error?: string): string | undefined {
  return [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
}

/** The API's word on one field, under it (read out with the field, as its description). */
function FieldError({ id, error }: { id: string; error?: string }) {
  return error ? (
    <small id={`${id}-error`} className="field-error">
      {error}
    </small>
  ) : null;
}

export function Field({
  label,
  hint,
  error,
  ...input
}: InputHTMLAttributes<HTMLInputElement> & { label: string; hint?: string; error?: string }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-describedby={describedBy(id, hint, error)} aria-invalid={error ? true : undefined} {...input} />
      {hint && (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      )}
      <FieldError id={id} error={error} />
    </div>
  );
}

export function Select({
  label,
  error,
  children,
  ...select
}: SelectHTMLAttributes<HTMLSelectElement> & { label: string; error?: string; children: ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} aria-describedby={describedBy(id, undefined, error)} aria-invalid={error ? true : undefined} {...select}>
        {children}
      </select>
      <FieldError id={id} error={error} />
    </div>
  );
}

/** An error (role=alert, read at once) or a notice (role=status). */
export function Notice({ kind, children }: { kind: "error" | "ok" | "info"; children: ReactNode }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

/** Brings a panel that just opened into view (it may open far from where the user clicked). */
export function useIntoView(ref: RefObject<HTMLElement | null>, key: unknown) {
  useEffect(() => {
    ref.current?.scrollIntoView?.({ block: "nearest" });
  }, [ref, key]);
}
