// The API client, typed from the service's own OpenAPI document (schema.d.ts is generated
// by scripts/api-types.mjs from `ingest-api openapi`): no hand-written request or response
// types, so an API change that breaks a page fails `tsc`.
import createClient, { type Middleware } from "openapi-fetch";
import { end, getSession } from "../session";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type ErrorBody = Schemas["ErrorBody"];

const auth: Middleware = {
  onRequest({ request }) {
    const session = getSession();
    if (session) request.headers.set("Authorization", `Bearer ${session.token}`);
    return request;
  },
  onResponse({ request, response }) {
    // A token the API no longer accepts (expired, revoked): the session is over, the app
    // shows the login page.
    if (response.status === 401 && request.headers.has("Authorization")) end("expired");
    return response;
  },
};

export const api = createClient<paths>({
  baseUrl: typeof location === "undefined" ? "http://127.0.0.1" : location.origin,
});
api.use(auth);

/** Waits this long for a booking command's outcome (`Prefer: wait=N`). */
export const WAIT = "wait=10";

/** A new Idempotency-Key for one intended action. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

/** Everything in the app that may go wrong on a call, as one value to show. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
  ) {
    super(body?.error.message ?? `HTTP ${status}`);
  }
  get code(): string {
    return this.body?.error.code ?? (this.status === 0 ? "network" : "unknown");
  }
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

async function settle<T>(call: Promise<Answer<T>>): Promise<Answer<T>> {
  let result;
  try {
    result = await call;
  } catch {
    throw new ApiProblem(0, undefined);
  }
  if (result.error !== undefined || !result.response.ok) {
    const body = isErrorBody(result.error) ? result.error : undefined;
    throw new ApiProblem(result.response.status, body);
  }
  return result;
}

/** The data of an openapi-fetch answer, or throws its error as an ApiProblem. */
export async function must<T>(call: Promise<Answer<T>>): Promise<T> {
  const result = await settle(call);
  if (result.data === undefined) throw new ApiProblem(result.response.status, undefined);
  return result.data;
}

/** An answer without a body (204 No Content): resolves once done, or throws as `must`. */
export async function mustDo(call: Promise<Answer<unknown>>): Promise<void> {
  await settle(call);
}

export function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    "error" in value &&
    typeof (value as { error: unknown }).error === "object" &&
    typeof (value as { error: { message?: unknown } }).error?.message === "string"
  );
}
