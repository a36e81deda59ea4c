// Once a visit has started, the desk and the doctor record whether the patient came: the
// doctor marks one appointment attended, the secretary another no-show; before it starts the
// buttons are not offered (and the API would refuse them).
import { expect, test } from "@playwright/test";
import { admin, asAdmin, call, clinic, freeStarts, patient, signIn, sql, unique } from "./support";

test("the doctor marks a started visit attended and the secretary another no-show", async ({ browser }) => {
  test.setTimeout(120_000);
  const c = await clinic(2);
  const people = [await patient(), await patient()];
  const start = Math.min(...(await freeStarts(c)));
  const ids: string[] = [];
  for (const [i, doctor] of c.doctors.entries()) {
    const r = await call<{ booking_id: string }>(
      "POST",
      "/bookings",
      { patient_id: people[i]!.id, doctor_id: doctor.id, center_id: c.centerId, service_id: c.serviceId, start: new Date(start).toISOString() },
      await admin(),
    );
    expect(r.status).toBe(202);
    ids.push(r.body.booking_id);
  }
  for (const id of ids) await expect.poll(() => sql(`SELECT status FROM appointments WHERE id = '${id}'`)).toBe("confirmed");

  const secretary = { username: `sec-${unique()}`, password: `pw-${unique()}-secret` };
  await asAdmin("POST", "/users", { ...secretary, role: "secretary" });
  const desk = await (await browser.newContext({ locale: "es-ES" })).newPage();
  await signIn(desk, secretary.username, secretary.password);
  await desk.getByLabel("Centro", { exact: true }).selectOption({ label: c.centerName });
  await desk.getByRole("button", { name: "Día", exact: true }).click();
  // Not started yet: move and cancel, no attendance.
  const cell = desk.getByRole("button", { name: new RegExp(`${people[1]!.name}.*${c.serviceName}`) });
  const go = desk.getByRole("button", { name: "Siguiente ›" });
  for (let i = 0; i < 7 && !(await cell.isVisible()); i++) await go.click();
  await cell.click();
  const panel = desk.getByRole("region", { name: "Cita" });
  await expect(panel.getByRole("button", { name: "Mover" })).toBeVisible();
  await expect(panel.getByRole("button", { name: "No acudió" })).toHaveCount(0);

  // The visits start now (time is moved in the database: nothing else could make it pass).
  sql(
    `UPDATE appointments SET starts_at = date_trunc('minute', now()) - interval '1 minute', ends_at = date_trunc('minute', now()) + interval '29 minutes', occupied_from = date_trunc('minute', now()) - interval '1 minute', occupied_until = date_trunc('minute', now()) + interval '29 minutes' WHERE id IN ('${ids.join("','")}')`,
  );

  const doc = await (await browser.newContext({ locale: "es-ES" })).newPage();
  await signIn(doc, c.doctors[0]!.username, c.doctors[0]!.password);
  await doc.getByRole("button", { name: "Día", exact: true }).click();
  await doc.getByRole("button", { name: new RegExp(c.serviceName) }).click();
  await doc.getByRole("region", { name: "Cita" }).getByRole("button", { name: "Acudió", exact: true }).click();
  await expect(doc.getByRole("status").filter({ hasText: /^Acudió/ })).toBeVisible();
  await expect.poll(() => sql(`SELECT attendance FROM appointments WHERE id = '${ids[0]}'`)).toBe("attended");

  await desk.reload();
  await desk.getByLabel("Centro", { exact: true }).selectOption({ label: c.centerName });
  await desk.getByRole("button", { name: "Día", exact: true }).click();
  await cell.click();
  await expect(panel.getByRole("button", { name: "Mover" })).toHaveCount(0);
  await panel.getByRole("button", { name: "No acudió" }).click();
  await expect(desk.getByRole("status").filter({ hasText: "No acudió" })).toBeVisible();
  await expect.poll(() => sql(`SELECT attendance FROM appointments WHERE id = '${ids[1]}'`)).toBe("no_show");
});
