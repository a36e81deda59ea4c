// Two patients in two browsers confirm the same free slot at the same moment: one gets it, the
// other is told it was taken and offered the next free slots, and can book one of them.
import { expect, test } from "@playwright/test";
import { clinic, freeStarts, patient, screenshots, signIn, sql } from "./support";

test("two browsers race for one slot: one is confirmed, the other is offered other slots", async ({ browser }) => {
  const c = await clinic();
  const people = [await patient(), await patient()];
  const pages = await Promise.all(people.map(async () => (await browser.newContext({ locale: "es-ES" })).newPage()));
  const first = Math.min(...(await freeStarts(c)));

  for (const [i, page] of pages.entries()) {
    await signIn(page, people[i]!.email, people[i]!.password);
    await page.getByRole("navigation").getByRole("link", { name: "Pedir cita" }).click();
    await page.getByLabel("Servicio").selectOption({ label: `${c.serviceName} (30 min)` });
    await page.getByRole("list", { name: "Horas libres" }).getByRole("button").first().click();
    await expect(page.getByRole("heading", { name: "Confirma tu cita" })).toBeVisible();
  }
  await Promise.all(pages.map((page) => page.getByRole("button", { name: "Confirmar" }).click()));

  const outcome = async (page: (typeof pages)[number]) => {
    const won = page.getByRole("status").filter({ hasText: "Cita confirmada" });
    const lost = page.getByRole("alert").filter({ hasText: "Esa hora acaba de ocuparse" });
    await expect(won.or(lost)).toBeVisible();
    return (await won.isVisible()) ? "won" : "lost";
  };
  const outcomes = await Promise.all(pages.map(outcome));
  expect([...outcomes].sort()).toEqual(["lost", "won"]);
  const loserIndex = outcomes.indexOf("lost");
  const loser = pages[loserIndex]!;
  const offered = loser.getByRole("list", { name: "Próximas horas libres" }).getByRole("button");
  await expect(offered.first()).toBeVisible();
  await screenshots(loser, "book-slot-taken");

  // Exactly one confirmed appointment holds the slot; the other patient has none yet.
  expect(sql(`SELECT count(*) FROM appointments WHERE doctor_id = '${c.doctors[0]!.id}' AND status = 'confirmed'`)).toBe("1");
  expect(
    sql(`SELECT count(*) FROM appointments WHERE patient_id = '${people[loserIndex]!.id}' AND status = 'rejected' AND reason_code = 'slot_taken'`),
  ).toBe("1");

  // The next free slot offered can be booked.
  await offered.first().click();
  await loser.getByRole("button", { name: "Confirmar" }).click();
  await expect(loser.getByRole("status").filter({ hasText: "Cita confirmada" })).toBeVisible();
  const starts = sql(
    `SELECT string_agg((extract(epoch FROM starts_at) * 1000)::bigint::text, ',' ORDER BY starts_at) FROM appointments WHERE doctor_id = '${c.doctors[0]!.id}' AND status = 'confirmed'`,
  ).split(",");
  expect(starts[0]).toBe(String(first));
  expect(starts).toHaveLength(2);
});
