// The signed-in user's session: the bearer token with its role and ids.
//
// Where the token lives: `sessionStorage` of this tab. It survives a reload but not the tab,
// is never sent by the browser on its own (no cookie, so no CSRF), and is not shared with other
// tabs or sites. Script injected into the page could read it, which is what the strict
// Content-Security-Policy ingest-api sends (`script-src 'self'`, no inline script, no eval,
// `connect-src 'self'`) and React's escaping of every text are there to prevent; and the token
// is short-lived (auth.token_ttl_secs, 1 hour by default) and revoked server-side by a password
// change. Logout clears it; an expired token (or a 401) ends the session and shows the login.

export type Role = "admin" | "secretary" | "doctor" | "patient";

export interface Session {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  role: Role;
  userId: string;
  username: string;
  patientId?: string;
  doctorId?: string;
}

const KEY = "citaflow.session";
type Listener = () => void;
const listeners = new Set<Listener>();
let current: Session | null = read();
let expiryTimer: ReturnType<typeof setTimeout> | undefined;
/** Why the last session ended, for the login page to say ("expired"). */
let endedBecause: "expired" | "logout" | null = null;

function storage(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;
  }
}

function read(): Session | null {
  const raw = storage()?.getItem(KEY);
  if (!raw) return null;
  try {
    const session = JSON.parse(raw) as Session;
    return session.expiresAt > Date.now() ? session : null;
  } catch {
    return null;
  }
}

function emit() {
  scheduleExpiry();
  for (const listener of listeners) listener();
}

function scheduleExpiry() {
  if (expiryTimer) clearTimeout(expiryTimer);
  if (!current) return;
  const left = current.expiresAt - Date.now();
  // setTimeout's limit is ~24.8 days; tokens live far less.
  expiryTimer = setTimeout(() => end("expired"), Math.max(0, Math.min(left, 2 ** 31 - 1)));
}

export function getSession(): Session | null {
  if (current && current.expiresAt <= Date.now()) end("expired");
  return current;
}

export function startSession(session: Session) {
  current = session;
  endedBecause = null;
  storage()?.setItem(KEY, JSON.stringify(session));
  emit();
}

/** Ends the session (logout, expiry or a 401) and forgets the token. */
export function end(why: "expired" | "logout") {
  if (!current) return;
  current = null;
  endedBecause = why;
  storage()?.removeItem(KEY);
  emit();
}

export function lastEnd() {
  return endedBecause;
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

scheduleExpiry();
