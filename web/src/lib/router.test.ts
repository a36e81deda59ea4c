import { describe, expect, it } from "vitest";
import { match } from "./router";

describe("match", () => {
  it("takes named parts and refuses other shapes", () => {
    expect(match("/app/appointments/:id", "/app/appointments/abc")).toEqual({ id: "abc" });
    expect(match("/app/appointments/:id", "/app/appointments")).toBeNull();
    expect(match("/app/appointments/:id", "/app/bookings/abc")).toBeNull();
    expect(match("/app", "/app/")).toEqual({});
  });
});
