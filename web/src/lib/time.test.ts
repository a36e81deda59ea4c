import { describe, expect, it } from "vitest";
import { addDays, formatTime, localDate, localMinutes, mondayOf, zoneLabel } from "./time";

describe("times in the center's zone", () => {
  it("reads an instant as the center's wall clock, not the browser's", () => {
    // 08:30 UTC in winter is 09:30 in Madrid and 08:30 in the Canaries.
    expect(formatTime("2026-12-07T08:30:00Z", "Europe/Madrid", "es")).toBe("09:30");
    expect(formatTime("2026-12-07T08:30:00Z", "Atlantic/Canary", "en")).toBe("08:30");
    expect(localMinutes("2026-12-07T08:30:00Z", "Europe/Madrid")).toBe(9 * 60 + 30);
  });

  it("dates an instant by the center's calendar", () => {
    expect(localDate("2026-12-07T23:30:00Z", "Europe/Madrid")).toBe("2026-12-08");
    expect(localDate("2026-12-07T23:30:00Z", "Atlantic/Canary")).toBe("2026-12-07");
  });

  it("names the zone with its abbreviation", () => {
    expect(zoneLabel("Europe/Madrid", "en", new Date("2026-12-07T10:00:00Z"))).toMatch(/^Europe\/Madrid \((CET|GMT\+1)\)$/);
  });

  it("walks calendar dates across month ends and finds Mondays", () => {
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2026-03-29", -1)).toBe("2026-03-28");
    expect(mondayOf("2026-12-06")).toBe("2026-11-30");
    expect(mondayOf("2026-12-07")).toBe("2026-12-07");
  });
});
