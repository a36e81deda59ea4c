import { describe, expect, it } from "vitest";
import { type Booking, type Exception, type Hours, inCell, rows, weekday, working } from "./grid";

const hours = (weekday: Hours["weekday"], start: string, end: string, doctor_id = "d1"): Hours => ({
  id: `${weekday}${start}`,
  center_id: "c",
  doctor_id,
  weekday,
  start,
  end,
  created_at: "",
});
const booking = (starts_at: string, doctor_id = "d1"): Booking =>
  ({ id: starts_at, doctor_id, starts_at, ends_at: starts_at, status: "confirmed" }) as Booking;

describe("the agenda grid", () => {
  const week = [hours("monday", "09:00", "11:00"), hours("monday", "16:00", "17:00", "d2")];

  it("knows weekdays of local dates", () => {
    expect(weekday("2026-12-07")).toBe("monday");
    expect(weekday("2026-12-06")).toBe("sunday");
  });

  it("spans a day's working hours and its bookings in half hours", () => {
    const day = rows("2026-12-07", week, [], "Europe/Madrid");
    expect(day[0]).toBe(9 * 60);
    expect(day.at(-1)).toBe(16 * 60 + 30);
    expect(day).toHaveLength(16);
    expect(rows("2026-12-08", week, [], "Europe/Madrid")).toEqual([]);
    // A booking outside the hours (07:45 in Madrid) widens the day.
    expect(rows("2026-12-08", week, [booking("2026-12-08T06:45:00Z")], "Europe/Madrid")).toEqual([450, 480]);
  });

  it("shades only the doctor's own hours", () => {
    expect(working("2026-12-07", 540, "d1", week)).toBe(true);
    expect(working("2026-12-07", 660, "d1", week)).toBe(false);
    expect(working("2026-12-07", 960, "d1", week)).toBe(false);
    expect(working("2026-12-07", 960, "d2", week)).toBe(true);
  });

  it("takes time off out of the hours and adds extra openings, time off first", () => {
    const off = (date: string, start?: string, end?: string): Exception =>
      ({ id: date + start, doctor_id: "d1", kind: "time_off", date, start, end }) as Exception;
    const extra = (date: string, start: string, end: string): Exception =>
      ({ id: date + start, doctor_id: "d1", center_id: "c", kind: "extra", date, start, end }) as Exception;
    // A whole day off, then only 10:00–10:30 off.
    expect(working("2026-12-07", 540, "d1", week, [off("2026-12-07")])).toBe(false);
    expect(working("2026-12-07", 540, "d2", week, [off("2026-12-07")])).toBe(false);
    expect(working("2026-12-07", 960, "d2", week, [off("2026-12-07")])).toBe(true);
    expect(working("2026-12-07", 600, "d1", week, [off("2026-12-07", "10:00", "10:30")])).toBe(false);
    expect(working("2026-12-07", 540, "d1", week, [off("2026-12-07", "10:00", "10:30")])).toBe(true);
    // Another date's time off changes nothing.
    expect(working("2026-12-07", 540, "d1", week, [off("2026-12-14")])).toBe(true);
    // A Tuesday opening 15:00–16:00: shaded, and its rows are there.
    expect(working("2026-12-08", 900, "d1", week, [extra("2026-12-08", "15:00", "16:00")])).toBe(true);
    expect(rows("2026-12-08", week, [], "Europe/Madrid", [extra("2026-12-08", "15:00", "16:00")])).toEqual([900, 930]);
    expect(working("2026-12-08", 900, "d1", week, [extra("2026-12-08", "15:00", "16:00"), off("2026-12-08")])).toBe(false);
  });

  it("puts a booking in the cell of its local start and doctor", () => {
    const b = [booking("2026-12-07T08:45:00Z"), booking("2026-12-07T08:45:00Z", "d2")];
    expect(inCell(b, (x) => x.starts_at, "2026-12-07", 570, "d1", "Europe/Madrid")).toHaveLength(1);
    expect(inCell(b, (x) => x.starts_at, "2026-12-07", 540, "d1", "Europe/Madrid")).toHaveLength(0);
    expect(inCell(b, (x) => x.starts_at, "2026-12-07", 570, "d1", "Atlantic/Canary")).toHaveLength(0);
  });
});
