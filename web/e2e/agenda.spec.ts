// The desk and the doctor: a secretary books a patient from the center's week view, moves and
// cancels the appointment; the doctor's open agenda shows each change without a reload.
import { expect, test } from "@playwright/test";
import { asAdmin, clinic, patient, screenshots, signIn, sql, unique } from "./support";

test("a secretary books for a patient from the week view and the doctor's agenda shows it live", async ({ browser }) => {
  test.setTimeout(150_000);
  const c = await clinic(2);
  const p = await patient();
  const secretary = { username: `sec-${unique()}`, password: `pw-${unique()}-secret` };
  await asAdmin("POST", "/users", { ...secretary, role: "secretary" });
  const doctor = c.doctors[0]!;

  const desk = await (await browser.newContext({ locale: "es-ES" })).newPage();
  const doc = await (await browser.newContext({ locale: "es-ES" })).newPage();
  await signIn(doc, doctor.username, doctor.password);
  await expect(doc.getByRole("heading", { name: `Agenda — ${c.centerName}` })).toBeVisible();
  await signIn(desk, secretary.username, secretary.password);
  await desk.getByLabel("Centro", { exact: true }).selectOption({ label: c.centerName });
  await desk.getByLabel("Servicio").selectOption({ label: `${c.serviceName} (30 min)` });
  await expect(desk.getByRole("heading", { name: `Agenda — ${c.centerName}` })).toBeVisible();
  // One column per doctor of the center.
  await expect(desk.getByRole("columnheader", { name: doctor.name }).first()).toBeVisible();
  await expect(desk.getByRole("columnheader", { name: c.doctors[1]!.name }).first()).toBeVisible();

  const freeOf = (page: typeof desk) => page.getByRole("button", { name: new RegExp(`^Libre .* ${doctor.name}$`) });
  if ((await freeOf(desk).count()) === 0) await desk.getByRole("button", { name: "Siguiente ›" }).click();
  await expect(freeOf(desk).first()).toBeVisible();
  // The doctor looks at the same week.
  if (await desk.getByRole("button", { name: "Siguiente ›" }).isVisible()) {
    const deskCaption = await desk.locator("caption").first().textContent();
    if ((await doc.locator("caption").first().textContent()) !== deskCaption) await doc.getByRole("button", { name: "Siguiente ›" }).click();
  }
  await screenshots(desk, "agenda-week");
  await freeOf(desk).first().click();

  await desk.getByLabel("Buscar paciente (nombre, email o teléfono)").fill(p.email.slice(0, 18));
  await desk.getByRole("button", { name: `Elegir: ${p.name}` }).click();
  await screenshots(desk, "agenda-book-for-patient");
  await desk.getByRole("region", { name: "Reservar para un paciente" }).getByRole("button", { name: "Confirmar" }).click();
  await expect(desk.getByRole("status").filter({ hasText: `Cita reservada para ${p.name}` })).toBeVisible();
  const booked = () => sql(`SELECT id || ' ' || status FROM appointments WHERE patient_id = '${p.id}' AND status = 'confirmed'`);
  expect(booked()).toMatch(/ confirmed$/);
  const serviceCell = (page: typeof desk) => page.getByRole("button", { name: new RegExp(c.serviceName) });

  // The doctor's agenda, open all along, shows it (no reload).
  await expect(serviceCell(doc)).toHaveCount(1);
  await expect(serviceCell(desk)).toContainText(p.name);
  await screenshots(doc, "agenda-doctor");

  // Move it to the next free time, then cancel it: the doctor sees both.
  const before = await serviceCell(doc).textContent();
  await serviceCell(desk).click();
  await desk.getByRole("button", { name: "Mover" }).click();
  await freeOf(desk).nth(1).click();
  await expect(desk.getByRole("status").filter({ hasText: "Cita cambiada" })).toBeVisible();
  await expect(serviceCell(doc)).not.toHaveText(before!);
  await expect(serviceCell(doc)).toHaveCount(1);
  expect(sql(`SELECT count(*) FROM appointments WHERE patient_id = '${p.id}' AND status = 'cancelled'`)).toBe("1");

  await serviceCell(desk).click();
  await desk.getByRole("region", { name: "Cita" }).getByRole("button", { name: "Anular la cita" }).click();
  await expect(desk.getByRole("status").filter({ hasText: "Cita anulada" })).toBeVisible();
  await expect(serviceCell(doc)).toHaveCount(0);
  expect(sql(`SELECT count(*) FROM appointments WHERE patient_id = '${p.id}' AND status = 'confirmed'`)).toBe("0");

  // A new patient registered at the desk and booked at once.
  const walkIn = `Paciente nuevo ${unique()}`;
  const email = `${walkIn.replaceAll(" ", ".").toLowerCase()}@example.test`;
  await freeOf(desk).first().click();
  await desk.getByRole("button", { name: "Nuevo paciente" }).click();
  const form = desk.getByRole("form", { name: "Nuevo paciente" });
  await form.getByLabel("Nombre y apellidos").fill(walkIn);
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Teléfono móvil").fill("+34600999888");
  await form.getByRole("button", { name: "Registrar" }).click();
  await desk.getByRole("region", { name: "Reservar para un paciente" }).getByRole("button", { name: "Confirmar" }).click();
  await expect(desk.getByRole("status").filter({ hasText: `Cita reservada para ${walkIn}` })).toBeVisible();
  expect(
    sql(`SELECT a.status FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE p.email = '${email}' AND p.phone = '+34600999888'`),
  ).toBe("confirmed");
  await expect(serviceCell(doc)).toHaveCount(1);
});
