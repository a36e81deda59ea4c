import { describe, expect, it } from "vitest";
import { EXCEPTION_FIELDS, HOURS_FIELDS, identity, lookupFrom, planOffers, prepare, windows } from "./agenda";
import { read, repeats } from "./csv";

const lookup = lookupFrom(
  [
    { id: "u1", username: "Dr.Ana" },
    { id: "u2", username: "dr.luis" },
  ],
  [
    { id: "d1", user_id: "u1" },
    { id: "d2", user_id: "u2" },
  ],
  [{ id: "c1", name: "OdontoCare Madrid" }],
  [
    { id: "s1", name: "Limpieza dental", doctor_ids: ["d1"] },
    { id: "s2", name: "Revisión", doctor_ids: [] },
  ],
);

const records = (kind: Parameters<typeof read>[0], text: string) => {
  const parsed = read(kind, text);
  if ("error" in parsed) throw new Error(parsed.error);
  return parsed.records;
};

describe("the agenda files in the browser", () => {
  it("groups offers by service and only adds them", () => {
    const rows = records(
      "doctor_services",
      "doctor,service\ndr.ana,limpieza dental\ndr.luis,Limpieza dental\ndr.ana,Revisión\nnadie,Revisión\ndr.ana,Nada\n",
    );
    const { known, plans } = planOffers(rows, lookup);
    expect(known[0]).toBe("existing");
    expect(known[3]).toEqual({ bad: 'doctor: no doctor has the username "nadie"' });
    expect(known[4]).toEqual({ bad: 'service: no service is called "Nada"' });
    expect(plans).toEqual([
      { serviceId: "s1", doctorIds: ["d1", "d2"], adds: [1] },
      { serviceId: "s2", doctorIds: ["d1"], adds: [2] },
    ]);
  });

  it("names ids for the rows' references and leaves the values to the API", () => {
    const [hours, blank, stranger] = records(
      "working_hours",
      "doctor,center,weekday,start,end,valid_from\nDR.ANA,odontocare madrid,Monday,9:00,14:00,\ndr.luis,,monday,,,\ndr.luis,Marte,monday,9:00,10:00,\n",
    );
    expect(prepare("working_hours", hours!, lookup)).toEqual({
      item: { doctor_id: "d1", center_id: "c1", weekday: "monday", start: "9:00", end: "14:00" },
    });
    // Required cells go empty, so the API names the field.
    expect(prepare("working_hours", blank!, lookup)).toEqual({
      item: { doctor_id: "d2", center_id: "", weekday: "monday", start: "", end: "" },
    });
    expect(prepare("working_hours", stranger!, lookup)).toEqual({ bad: 'center: no center is called "Marte"' });
    const [off] = records("agenda_exceptions", "doctor,kind,date,center,start,end,note\ndr.ana,Time_Off,2027-01-06,,,,Reyes\n");
    expect(prepare("agenda_exceptions", off!, lookup)).toEqual({
      item: { doctor_id: "d1", kind: "time_off", date: "2027-01-06", note: "Reyes" },
    });
  });

  it("compares ranges and exceptions as the API stores them", () => {
    const sent = { doctor_id: "d1", center_id: "c1", weekday: "monday", start: "9:00", end: "14:00" };
    const stored = { ...sent, id: "h1", start: "09:00", valid_from: null, valid_until: null };
    expect(identity(sent, HOURS_FIELDS)).toBe(identity(stored, HOURS_FIELDS));
    expect(identity({ ...sent, end: "14:30" }, HOURS_FIELDS)).not.toBe(identity(stored, HOURS_FIELDS));
    const off = { doctor_id: "d1", kind: "time_off", date: "2027-1-6", note: "a" };
    expect(identity(off, EXCEPTION_FIELDS)).toBe(identity({ ...off, date: "2027-01-06", center_id: null, note: "b" }, EXCEPTION_FIELDS));
  });

  it("reads each doctor's exceptions in a few short windows", () => {
    // 2027-02-03 is 28 days after 2027-01-06: a new window; 2027-03-01 fits in that one
    expect(windows(["2027-03-01", "2027-06-01", "2027-01-06", "2027-01-06", "2027-01-20", "2027-02-03"], 28)).toEqual([
      ["2027-01-06", "2027-01-20"],
      ["2027-02-03", "2027-03-01"],
      ["2027-06-01", "2027-06-01"],
    ]);
  });

  it("reports a key repeated inside one file with the line it repeats", () => {
    const rows = records("working_hours", "doctor,center,weekday,start,end\na,M,monday,9:00,10:00\nb,M,monday,9:00,10:00\nA,m,Monday,09:00,10:00\n");
    const repeated = repeats("working_hours", rows);
    expect([...repeated].map(([r, first]) => [r.line, first])).toEqual([[4, 2]]);
  });
});
