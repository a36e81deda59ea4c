import { describe, expect, it } from "vitest";
import { ApiProblem } from "../../../lib/api/client";
import { type FieldSpec, activeFilter, bodyOf, fieldErrors, fieldsFor, initialValues, listHref, listState, pageCount } from "./form";

const fields: FieldSpec[] = [
  { name: "name", label: "dirName", required: true },
  { name: "duration_minutes", label: "durationMinutes", input: "number", required: true },
  { name: "language", label: "centerLanguage", input: "select", options: [{ value: "", label: "languageDefault" }] },
  { name: "password", label: "password", input: "password", only: "create" },
];

describe("the directory's forms", () => {
  it("keeps the create-only fields off the edit form", () => {
    expect(fieldsFor(fields, "edit").map((f) => f.name)).toEqual(["name", "duration_minutes", "language"]);
    expect(fieldsFor(fields, "create")).toHaveLength(4);
  });

  it("starts from the record's values, as text, nulls empty", () => {
    expect(initialValues(fields, { name: "Limpieza", duration_minutes: 30, language: null })).toEqual({
      name: "Limpieza",
      duration_minutes: "30",
      language: "",
      password: "",
    });
  });

  it("creates with what was filled in: trimmed text, numbers as numbers, empty optional fields left out", () => {
    expect(bodyOf(fields, { name: "  Limpieza ", duration_minutes: "45", language: "", password: "" })).toEqual({
      name: "Limpieza",
      duration_minutes: 45,
    });
    // A required field left empty is sent, so the API names it.
    expect(bodyOf(fields, { name: "", duration_minutes: "", language: "", password: " pw " })).toEqual({
      name: "",
      duration_minutes: "",
      password: " pw ",
    });
  });

  it("edits with only what changed", () => {
    const original = initialValues(fieldsFor(fields, "edit"), { name: "Limpieza", duration_minutes: 30, language: "es" });
    expect(bodyOf(fieldsFor(fields, "edit"), { ...original, duration_minutes: "40 " }, original)).toEqual({ duration_minutes: 40 });
    expect(bodyOf(fieldsFor(fields, "edit"), original, original)).toEqual({});
    expect(bodyOf(fieldsFor(fields, "edit"), { ...original, language: "" }, original)).toEqual({ language: "" });
  });

  it("reads and writes a list of minutes: empty is the platform's, '-' none", () => {
    const offsets: FieldSpec[] = [{ name: "reminder_offsets_minutes", label: "reminderOffsets", input: "minutes" }];
    expect(initialValues(offsets, { reminder_offsets_minutes: [1440, 60] })).toEqual({ reminder_offsets_minutes: "1440, 60" });
    expect(initialValues(offsets, { reminder_offsets_minutes: [] })).toEqual({ reminder_offsets_minutes: "-" });
    expect(initialValues(offsets, { reminder_offsets_minutes: null })).toEqual({ reminder_offsets_minutes: "" });
    expect(bodyOf(offsets, { reminder_offsets_minutes: "2880,  60" })).toEqual({ reminder_offsets_minutes: [2880, 60] });
    const original = { reminder_offsets_minutes: "1440" };
    expect(bodyOf(offsets, { reminder_offsets_minutes: "-" }, original)).toEqual({ reminder_offsets_minutes: [] });
    expect(bodyOf(offsets, { reminder_offsets_minutes: "" }, original)).toEqual({ reminder_offsets_minutes: null });
    expect(bodyOf(offsets, { reminder_offsets_minutes: "1 day" })).toEqual({ reminder_offsets_minutes: "1 day" });
  });

  it("sends a number that is not one as typed, for the API to refuse", () => {
    expect(bodyOf(fields, { name: "x", duration_minutes: "abc" })).toEqual({ name: "x", duration_minutes: "abc" });
  });

  it("puts the API's reasons on their fields and counts the rest", () => {
    const problem = new ApiProblem(422, {
      error: {
        code: "validation_failed",
        message: "Invalid",
        details: [
          { field: "name", message: "is required" },
          { field: "name", message: "is too long" },
          { field: "doctor_id", message: "is no doctor" },
        ],
      },
    });
    expect(fieldErrors(problem, ["name", "timezone"])).toEqual({ byField: { name: "is required; is too long" }, others: 1 });
    const conflict = new ApiProblem(409, { error: { code: "duplicate", message: "Taken", details: null } });
    expect(fieldErrors(conflict, ["name"])).toEqual({ byField: {}, others: 1 });
    expect(fieldErrors(null, ["name"])).toEqual({ byField: {}, others: 0 });
  });
});

describe("the directory's lists", () => {
  it("read their state from the address, with safe defaults", () => {
    expect(listState(new URLSearchParams(""))).toEqual({ q: "", active: "active", page: 1 });
    expect(listState(new URLSearchParams("q=ana&active=inactive&page=3"))).toEqual({ q: "ana", active: "inactive", page: 3 });
    expect(listState(new URLSearchParams("active=maybe&page=-2"))).toEqual({ q: "", active: "active", page: 1 });
    expect(listState(new URLSearchParams("page=1.5")).page).toBe(1);
  });

  it("write it back, leaving the defaults out", () => {
    expect(listHref("/x", { q: "", active: "active", page: 1 })).toBe("/x");
    expect(listHref("/x", { q: " Ana María ", active: "all", page: 2 })).toBe("/x?q=Ana+Mar%C3%ADa&active=all&page=2");
  });

  it("filter on active as the API takes it, and count pages", () => {
    expect(activeFilter({ q: "", active: "active", page: 1 })).toBe(true);
    expect(activeFilter({ q: "", active: "inactive", page: 1 })).toBe(false);
    expect(activeFilter({ q: "", active: "all", page: 1 })).toBeUndefined();
    expect(pageCount(0, 20)).toBe(1);
    expect(pageCount(40, 20)).toBe(2);
    expect(pageCount(41, 20)).toBe(3);
  });
});
