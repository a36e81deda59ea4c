// What the browser tests set up through the public API (as the local admin) and check in
// the database and Mailpit. Every test makes its own clinic: a center, doctors, a service
// and working hours, so tests never share slots.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { type Page, expect } from "@playwright/test";

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with ./dev test (it loads .run/stack.env)`);
  return value;
};

export const API = () => env("CITAFLOW_DEV_API_URL");
const ROOT = resolve(import.meta.dirname, "../..");
export const SHOTS = resolve(ROOT, ".run/screenshots");

let adminToken: Promise<string> | null = null;

export async function call<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(API() + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function login(username: string, password: string): Promise<string> {
  const r = await call<{ access_token: string }>("POST", "/auth/login", { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

export function admin(): Promise<string> {
  adminToken ??= login(env("CITAFLOW_DEV_ADMIN_USERNAME"), env("CITAFLOW_DEV_ADMIN_PASSWORD"));
  return adminToken;
}

export async function asAdmin<T = { id: string }>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await call<T>(method, path, body, await admin());
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export interface Clinic {
  tag: string;
  centerId: string;
  centerName: string;
  serviceId: string;
  serviceName: string;
  doctors: { id: string; name: string; username: string; password: string }[];
}

const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;

/** A center in Madrid's zone with `doctors` doctors, each working 09:00–13:00 every day, and a
 * 30-minute service they all offer. */
export async function clinic(doctors = 1): Promise<Clinic> {
  const tag = unique();
  const centerName = `Centro ${tag}`;
  const center = await asAdmin("POST", "/centers", { name: centerName, address: "Calle Mayor 1, Madrid", timezone: "Europe/Madrid" });
  const made = [];
  for (let i = 0; i < doctors; i++) {
    const name = `Dra. Prueba ${tag}-${i + 1}`;
    const username = `doc-${tag}-${i + 1}`;
    const password = `pw-${tag}-secret`;
    const doctor = await asAdmin("POST", "/doctors", { name, specialty: "Odontología", username, password });
    for (const weekday of WEEKDAYS) {
      await asAdmin("POST", "/working-hours", { doctor_id: doctor.id, center_id: center.id, weekday, start: "09:00", end: "13:00" });
    }
    made.push({ id: doctor.id, name, username, password });
  }
  const serviceName = `Revisión ${tag}`;
  const service = await asAdmin("POST", "/services", { name: serviceName, duration_minutes: 30, doctor_ids: made.map((d) => d.id) });
  return { tag, centerId: center.id, centerName, serviceId: service.id, serviceName, doctors: made };
}

/** A patient made by the admin (for tests that are not about signing up). */
export async function patient(tag = unique()) {
  const email = `paciente-${tag}@example.test`;
  const password = `pw-${tag}-secret`;
  const p = await asAdmin<{ id: string }>("POST", "/patients", { name: `Paciente ${tag}`, email, password, language: "es", phone: "+34600111222" });
  return { id: p.id, email, password, name: `Paciente ${tag}` };
}

/** One value from the database, as psql prints it. */
export function sql(query: string): string {
  const psql = `${env("CITAFLOW_DEV_PG_BIN")}/psql`;
  return execFileSync(psql, [env("CITAFLOW__DATABASE__URL"), "-AtX", "-c", query], { encoding: "utf8" }).trim();
}

/** The free slot starts (UTC ms) of a service at a center, over the next week. */
export async function freeStarts(c: Clinic): Promise<Set<number>> {
  const a = await asAdmin<{ days: { slots: { start: string }[] }[] }>(
    "GET",
    `/availability?service_id=${c.serviceId}&center_id=${c.centerId}`,
  );
  return new Set(a.days.flatMap((d) => d.slots.map((s) => new Date(s.start).getTime())));
}

/** The messages Mailpit holds for an address, newest first, waiting until `until` holds. */
export async function mails(to: string, until: (subjects: string[]) => boolean): Promise<{ ID: string; Subject: string }[]> {
  const mailpit = env("CITAFLOW_DEV_MAILPIT_URL");
  let found: { ID: string; Subject: string }[] = [];
  await expect
    .poll(
      async () => {
        const r = await fetch(`${mailpit}/api/v1/search?query=${encodeURIComponent(`to:"${to}"`)}`);
        found = ((await r.json()) as { messages: { ID: string; Subject: string }[] }).messages ?? [];
        return until(found.map((m) => m.Subject));
      },
      { timeout: 30_000, message: `emails to ${to}` },
    )
    .toBe(true);
  return found;
}

export async function mailText(id: string): Promise<string> {
  const r = await fetch(`${env("CITAFLOW_DEV_MAILPIT_URL")}/api/v1/message/${id}`);
  return ((await r.json()) as { Text: string }).Text;
}

/** Screenshots of the page as it is, desktop and phone-sized, under .run/screenshots/. */
export async function screenshots(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: `${SHOTS}/${name}-desktop.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/${name}-phone.png`, fullPage: true });
  await page.setViewportSize(size);
}

/** Signs in through the login page. */
export async function signIn(page: Page, username: string, password: string) {
  await page.goto("/app/login");
  await page.getByLabel(/Usuario o email|Username or email/).fill(username);
  await page.getByLabel(/^(Contraseña|Password)$/).fill(password);
  await page.getByRole("button", { name: /^(Entrar|Sign in)$/ }).click();
}
