// What the booking page does with an availability answer, apart from React.
import type { Schemas } from "../../lib/api/client";

export type Availability = Schemas["Availability"];
export type FreeSlot = Schemas["FreeSlot"];

/** The first date of the answer that has a free slot, else its first date. */
export function firstDayWithSlots(availability: Availability): string | null {
  return (availability.days.find((d) => d.slots.length > 0) ?? availability.days[0])?.date ?? null;
}

/** Free slots after `after` (not the same instant), in order, at most `count`. */
export function nextSlots(availability: Availability, after: string, count: number, skipDoctor?: string): FreeSlot[] {
  const at = new Date(after).getTime();
  const out: FreeSlot[] = [];
  for (const day of availability.days) {
    for (const slot of day.slots) {
      const start = new Date(slot.start).getTime();
      if (start < at || (start === at && (!skipDoctor || slot.doctor_id === skipDoctor))) continue;
      out.push(slot);
      if (out.length >= count) return out;
    }
  }
  return out;
}

/** A stable key of one slot (the same start can be free with several doctors). */
export function slotKey(slot: FreeSlot): string {
  return `${slot.start}|${slot.doctor_id}|${slot.center_id}`;
}
