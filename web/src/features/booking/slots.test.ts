import { describe, expect, it } from "vitest";
import { type Availability, firstDayWithSlots, nextSlots } from "./slots";

const slot = (start: string, doctor = "d1") => ({ start, end: start, doctor_id: doctor, center_id: "c1" });
const availability = {
  service: { id: "s", name: "Revisión", duration_minutes: 30 },
  from: "2026-12-07",
  to: "2026-12-09",
  doctors: [],
  centers: [],
  days: [
    { date: "2026-12-07", slots: [] },
    { date: "2026-12-08", slots: [slot("2026-12-08T09:00:00+01:00"), slot("2026-12-08T09:00:00+01:00", "d2"), slot("2026-12-08T09:30:00+01:00")] },
    { date: "2026-12-09", slots: [slot("2026-12-09T10:00:00+01:00")] },
  ],
} as Availability;

describe("free slots", () => {
  it("opens on the first day with a free slot", () => {
    expect(firstDayWithSlots(availability)).toBe("2026-12-08");
  });

  it("offers the next slots after a taken one, the same time with another doctor included", () => {
    const next = nextSlots(availability, "2026-12-08T09:00:00+01:00", 3, "d1");
    expect(next.map((s) => [s.start, s.doctor_id])).toEqual([
      ["2026-12-08T09:00:00+01:00", "d2"],
      ["2026-12-08T09:30:00+01:00", "d1"],
      ["2026-12-09T10:00:00+01:00", "d1"],
    ]);
  });
});
