import { describe, expect, it } from "vitest";
import { item, kindOf, parse, read } from "./csv";

describe("CSV in the browser", () => {
  it("parses quotes, commas and line breaks inside fields, and knows each record's line", () => {
    const rows = parse('\uFEFFname,address\r\n"A, B","Calle ""X""\nbis"\r\n\r\nC,D\n');
    expect(rows.slice()).toEqual([
      ["name", "address"],
      ["A, B", 'Calle "X"\nbis'],
      ["C", "D"],
    ]);
    expect(rows.lines).toEqual([1, 2, 5]);
  });

  it("reads a file by its header and refuses unknown or missing columns", () => {
    const ok = read("centers", "name,address,timezone\nMadrid,Calle 1,Europe/Madrid\n");
    expect("records" in ok && ok.records[0]!.cells.get("timezone")).toBe("Europe/Madrid");
    expect(read("centers", "name,adress,timezone\n")).toEqual({ error: "unknown column(s): adress" });
    expect(read("centers", "name,timezone\n")).toEqual({ error: "missing column(s): address" });
  });

  it("makes the bulk items the API reads", () => {
    const record = (cells: [string, string][]) => ({ line: 2, cells: new Map(cells) });
    const user = item("users", record([["username", "ana"], ["role", "Secretary"]]));
    expect(user.role).toBe("secretary");
    expect(String(user.password).length).toBeGreaterThanOrEqual(32);
    expect(item("services", record([["name", "Revisión"], ["duration_minutes", "30"], ["buffer_after_minutes", ""]]))).toEqual({
      name: "Revisión",
      duration_minutes: 30,
    });
    expect(item("doctors", record([["username", "dr.ana"]]))).toEqual({ username: "dr.ana", name: "", specialty: "" });
    expect(kindOf("Patients.CSV")).toBe("patients");
    expect(kindOf("notes.csv")).toBeNull();
  });
});
