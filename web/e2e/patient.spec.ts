// A patient's own story, through the pages only: sign up, welcome email, book the first free
// slot, confirmation email, reschedule, cancel; the database and the agenda agree each time.
import { expect, test } from "@playwright/test";
import { clinic, freeStarts, mailText, mails, screenshots, sql, unique } from "./support";

test("a new patient signs up, books the first free slot, reschedules and cancels", async ({ page }) => {
  const c = await clinic();
  const tag = unique();
  const email = `nuevo-${tag}@example.test`;

  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Entra en Citaflow" })).toBeVisible();
  await screenshots(page, "login");
  await page.getByRole("link", { name: "Crear cuenta" }).click();
  await page.getByLabel("Nombre y apellidos").fill(`Lucía Pérez ${tag}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Teléfono móvil").fill("+34600123456");
  await page.getByLabel("Idioma de los avisos").selectOption("es");
  await page.getByLabel("Contraseña").fill(`pw-${tag}-secret`);
  await screenshots(page, "signup");
  await page.getByRole("button", { name: "Crear cuenta" }).click();

  await expect(page.getByRole("status").filter({ hasText: "Cuenta creada" })).toBeVisible();
  const [welcome] = await mails(email, (subjects) => subjects.some((s) => /Bienvenid/.test(s)));
  expect(await mailText(welcome!.ID)).toContain(`Lucía Pérez ${tag}`);

  // Book: service → center → any doctor → the first day with room → its first slot.
  await page.getByLabel("Servicio").selectOption({ label: `${c.serviceName} (30 min)` });
  await page.getByLabel("Centro", { exact: true }).selectOption({ label: c.centerName });
  await expect(page.getByLabel("Médico")).toHaveValue("");
  await expect(page.getByText(/Horas en Europe\/Madrid \((CET|CEST|GMT\+1|GMT\+2)\)/)).toBeVisible();
  const free = page.getByRole("list", { name: "Horas libres" }).getByRole("button");
  await expect(free.first()).toBeVisible();
  const firstBefore = await freeStarts(c);
  const first = Math.min(...firstBefore);
  const firstLabel = new Intl.DateTimeFormat("es-ES", { timeZone: "Europe/Madrid", hour: "2-digit", minute: "2-digit" }).format(first);
  await expect(free.first()).toHaveText(new RegExp(`^${firstLabel}`));
  await screenshots(page, "book-slots");
  await free.first().click();
  await expect(page.getByRole("heading", { name: "Confirma tu cita" })).toBeVisible();
  await screenshots(page, "book-confirm");
  await page.getByRole("button", { name: "Confirmar" }).click();

  await expect(page.getByRole("status").filter({ hasText: "Cita confirmada" })).toBeVisible();
  await expect(page.getByTestId("status")).toHaveText("Confirmada");
  const bookingId = page.url().match(/appointments\/([0-9a-f-]{36})/)![1]!;
  await screenshots(page, "appointment");
  // The database holds it confirmed at that time, and the agenda no longer offers it.
  expect(sql(`SELECT status || ' ' || (extract(epoch FROM starts_at) * 1000)::bigint FROM appointments WHERE id = '${bookingId}'`)).toBe(
    `confirmed ${first}`,
  );
  expect((await freeStarts(c)).has(first)).toBe(false);
  await mails(email, (subjects) => subjects.some((s) => /confirmada/i.test(s)));

  // Reschedule to the next free slot.
  await page.getByRole("link", { name: "Cambiar de hora" }).click();
  await expect(page.getByRole("heading", { name: "Cambiar la cita" })).toBeVisible();
  const again = page.getByRole("list", { name: "Horas libres" }).getByRole("button");
  await expect(again.first()).toBeVisible();
  const second = Math.min(...(await freeStarts(c)));
  await again.first().click();
  await page.getByRole("button", { name: "Confirmar" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Cita cambiada" })).toBeVisible();
  const movedId = page.url().match(/appointments\/([0-9a-f-]{36})/)![1]!;
  expect(movedId).not.toBe(bookingId);
  expect(sql(`SELECT status FROM appointments WHERE id = '${bookingId}'`)).toBe("cancelled");
  expect(sql(`SELECT status || ' ' || (extract(epoch FROM starts_at) * 1000)::bigint FROM appointments WHERE id = '${movedId}'`)).toBe(
    `confirmed ${second}`,
  );
  const agenda = await freeStarts(c);
  expect(agenda.has(first)).toBe(true);
  expect(agenda.has(second)).toBe(false);

  // My appointments lists it upcoming; then cancel it.
  await page.getByRole("link", { name: "Mis citas" }).first().click();
  await expect(page.getByRole("list", { name: "Próximas" }).getByRole("listitem")).toHaveCount(1);
  await screenshots(page, "appointments");
  await page.getByRole("list", { name: "Próximas" }).getByRole("link").click();
  await page.getByRole("button", { name: "Anular la cita" }).click();
  await page.getByRole("group", { name: "¿Anular esta cita?" }).getByRole("button", { name: "Anular la cita" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Cita anulada" })).toBeVisible();
  await expect(page.getByTestId("status")).toHaveText("Anulada");
  expect(sql(`SELECT status FROM appointments WHERE id = '${movedId}'`)).toBe("cancelled");
  expect((await freeStarts(c)).has(second)).toBe(true);

  await page.getByRole("link", { name: "Mis citas" }).first().click();
  await expect(page.getByText("No tienes citas próximas.")).toBeVisible();
  await expect(page.getByRole("list", { name: "Pasadas y anuladas" }).getByRole("listitem")).toHaveCount(2);
});
