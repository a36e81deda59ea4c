import { describe, expect, it } from "vitest";
import { ApiProblem, must, mustDo } from "./client";

const answer = (status: number, data?: unknown, error?: unknown) =>
  Promise.resolve({ data, error, response: new Response(null, { status }) });

describe("the API client's answers", () => {
  it("gives the data, or throws the API's error as a problem", async () => {
    await expect(must(answer(200, { id: "a" }))).resolves.toEqual({ id: "a" });
    const body = { error: { code: "not_found", message: "center not found", details: null } };
    await expect(must(answer(404, undefined, body))).rejects.toMatchObject({ status: 404, code: "not_found" });
    await expect(must(Promise.reject(new TypeError("offline")))).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("takes a 204 as done, not as a missing body", async () => {
    await expect(mustDo(answer(204))).resolves.toBeUndefined();
    await expect(must(answer(204))).rejects.toBeInstanceOf(ApiProblem);
    await expect(mustDo(answer(403, undefined, { error: { code: "forbidden", message: "no", details: null } }))).rejects.toMatchObject({
      code: "forbidden",
    });
  });
});
