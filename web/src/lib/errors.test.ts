import { describe as group, expect, it } from "vitest";
import { ApiProblem } from "./api/client";
import { describe } from "./errors";

group("API errors in words", () => {
  it("says a known code in the user's language", () => {
    const problem = new ApiProblem(429, { error: { code: "too_many_requests", message: "Too many", details: null } });
    expect(describe(problem, "es")).toMatch(/Demasiados intentos/);
    expect(describe(problem, "en")).toMatch(/Too many attempts/);
  });

  it("lists each invalid field with the API's reason", () => {
    const problem = new ApiProblem(422, {
      error: {
        code: "validation_failed",
        message: "Invalid",
        details: [
          { field: "email", message: "must be an email address" },
          { field: "password", message: "is too short" },
        ],
      },
    });
    expect(describe(problem, "en")).toBe("Email: must be an email address · Password: is too short");
  });

  it("falls back to the API's own message, and to a general one off the network", () => {
    expect(describe(new ApiProblem(409, { error: { code: "something_new", message: "Said plainly.", details: null } }), "es")).toBe(
      "Said plainly.",
    );
    expect(describe(new ApiProblem(0, undefined), "en")).toMatch(/Cannot reach the server/);
  });
});
