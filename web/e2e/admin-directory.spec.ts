// The admin keeps the directory through its pages: creates a center (a bad time zone first,
// refused in words next to its field), a service, a doctor with their user and a patient; gives
// the doctor weekly hours, a day off and the service, and removes one range; finds each record by
// search; gives the doctor's user a new password; edits the center (the change is there after a
// reload); deactivates the service (gone from the active list, shown among the inactive ones);
// reads the page in English. Names are unique per run: the stack is shared.
import { type Page, expect, test } from "@playwright/test";
import { login, screenshots, signIn, sql, unique } from "./support";

const madridDate = (daysAhead: number) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Madrid", year: "numeric", month: "2-digit", day: "2-digit" }).format(
    new Date(Date.now() + daysAhead * 86_400_000),
  );

async function openKind(page: Page, title: string) {
  await page.getByRole("navigation", { name: "Directorio" }).getByRole("link", { name: title }).click();
  await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
}

async function search(page: Page, words: string) {
  await page.getByRole("searchbox", { name: "Buscar" }).fill(words);
  await page.getByRole("search").getByRole("button", { name: "Buscar" }).click();
}

test("an admin creates, finds, edits and deactivates directory records and keeps a doctor's hours", async ({ page }) => {
  test.setTimeout(180_000);
  const tag = unique();
  const centerName = `Centro Directorio ${tag}`;
  const serviceName = `Limpieza ${tag}`;
  const doctorName = `Dra. Directorio ${tag}`;
  const username = `dir-doc-${tag}`;

  await signIn(page, process.env.CITAFLOW_DEV_ADMIN_USERNAME!, process.env.CITAFLOW_DEV_ADMIN_PASSWORD!);
  await page.getByRole("link", { name: "Directorio" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Centros" })).toBeVisible();

  // A center: a time zone that is none is refused, in words, next to its field.
  await page.getByRole("link", { name: "Nuevo centro" }).click();
  const newCenter = page.getByRole("form", { name: "Nuevo centro" });
  await newCenter.getByLabel("Nombre", { exact: true }).fill(centerName);
  await newCenter.getByLabel("Dirección").fill("Calle Mayor 1, Madrid");
  await newCenter.getByLabel("Zona horaria").fill("Mars/Olympus");
  await newCenter.getByRole("button", { name: "Crear" }).click();
  const alert = newCenter.getByRole("alert");
  await expect(alert).toHaveText("Zona horaria: must be an IANA time zone, e.g. Europe/Madrid");
  await expect(alert).toBeFocused();
  await expect(newCenter.getByLabel("Zona horaria")).toHaveAttribute("aria-invalid", "true");
  await expect(newCenter.getByLabel("Zona horaria")).toHaveAccessibleDescription(/must be an IANA time zone/);
  await screenshots(page, "admin-directory-error");
  await newCenter.getByLabel("Zona horaria").fill("Europe/Madrid");
  await newCenter.getByRole("button", { name: "Crear" }).click();
  await expect(page.getByRole("heading", { level: 1, name: `Centro: ${centerName}` })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Creado." })).toBeVisible();
  expect(sql(`SELECT timezone FROM centers WHERE name = '${centerName}'`)).toBe("Europe/Madrid");

  // A service.
  await openKind(page, "Servicios");
  await page.getByRole("link", { name: "Nuevo servicio" }).click();
  const newService = page.getByRole("form", { name: "Nuevo servicio" });
  await newService.getByLabel("Nombre", { exact: true }).fill(serviceName);
  await newService.getByLabel("Duración (min)").fill("30");
  await newService.getByRole("button", { name: "Crear" }).click();
  await expect(page.getByRole("heading", { level: 1, name: `Servicio: ${serviceName}` })).toBeVisible();

  // A doctor with their user.
  await openKind(page, "Médicos");
  await page.getByRole("link", { name: "Nuevo médico" }).click();
  const newDoctor = page.getByRole("form", { name: "Nuevo médico" });
  await newDoctor.getByLabel("Nombre", { exact: true }).fill(doctorName);
  await newDoctor.getByLabel("Especialidad").fill("Higiene dental");
  await newDoctor.getByLabel("Nombre de usuario").fill(username);
  await newDoctor.getByLabel("Contraseña").fill(`pw-${tag}-secret`);
  await newDoctor.getByRole("button", { name: "Crear" }).click();
  await expect(page.getByRole("heading", { level: 1, name: `Médico: ${doctorName}` })).toBeVisible();
  expect(sql(`SELECT u.username || ' ' || u.role FROM doctors d JOIN users u ON u.id = d.user_id WHERE d.name = '${doctorName}'`)).toBe(
    `${username} doctor`,
  );

  // Weekly hours at the new center, Monday and Tuesday; times in the center's zone.
  const hours = page.getByRole("region", { name: "Horario semanal" });
  const addHours = async (weekday: string, start: string, end: string) => {
    const form = hours.getByRole("form", { name: "Añadir horario" });
    if (!(await form.isVisible())) await hours.getByText("Añadir horario", { exact: true }).click();
    await form.getByLabel("Buscar centro").fill(centerName);
    await expect(form.getByLabel("Centro", { exact: true })).toHaveText(`${centerName} — Europe/Madrid`);
    await form.getByLabel("Día de la semana").selectOption({ label: weekday });
    await form.getByLabel("Desde (HH:MM)").fill(start);
    await form.getByLabel("Hasta (HH:MM)").fill(end);
    await form.getByRole("button", { name: "Añadir" }).click();
  };
  await addHours("Lunes", "09:00", "13:00");
  await expect(hours.getByRole("row").filter({ hasText: "Lunes" })).toContainText(/09:00–13:00 Europe\/Madrid \(CES?T\)/);
  // An end before the start is refused next to its field.
  await addHours("Martes", "16:00", "15:00");
  await expect(hours.getByRole("alert")).toContainText("Hasta:");
  await addHours("Martes", "16:00", "19:30");
  await expect(hours.getByRole("row").filter({ hasText: "Martes" })).toContainText("16:00–19:30");
  await expect(hours.getByRole("row")).toHaveCount(3);

  // A day off, the whole day at every center.
  const dayOff = madridDate(8);
  const exceptions = page.getByRole("region", { name: "Ausencias y aperturas extra" });
  await exceptions.getByText("Añadir ausencia o apertura", { exact: true }).click();
  const newException = exceptions.getByRole("form", { name: "Añadir ausencia o apertura" });
  await newException.getByLabel("Tipo").selectOption({ label: "Ausencia" });
  await newException.getByLabel("Día", { exact: true }).fill(dayOff);
  await newException.getByLabel("Nota (opcional)").fill("Congreso");
  await newException.getByRole("button", { name: "Añadir" }).click();
  const offRow = exceptions.getByRole("row").filter({ hasText: "Congreso" });
  await expect(offRow).toContainText("Ausencia");
  await expect(offRow).toContainText("Todo el día");
  await expect(offRow).toContainText("Todos los centros");

  // The service they offer.
  const offered = page.getByRole("region", { name: "Servicios que ofrece" });
  await offered.getByText("Añadir servicio", { exact: true }).click();
  const newOffer = offered.getByRole("form", { name: "Añadir servicio" });
  await newOffer.getByLabel("Buscar servicio").fill(serviceName);
  await expect(newOffer.getByLabel("Servicio", { exact: true })).toHaveText(serviceName);
  await newOffer.getByRole("button", { name: "Añadir" }).click();
  await expect(offered.getByRole("row").filter({ hasText: serviceName })).toBeVisible();
  await screenshots(page, "admin-directory-doctor");

  // One range removed: the other stays, here and in the database.
  await hours.getByRole("button", { name: "Quitar: Martes 16:00–19:30" }).click();
  await expect(hours.getByRole("status")).toHaveText("Quitado: Martes 16:00–19:30.");
  await expect(hours.getByRole("row")).toHaveCount(2);
  const doctorId = sql(`SELECT id FROM doctors WHERE name = '${doctorName}'`);
  expect(sql(`SELECT count(*) FROM working_hours WHERE doctor_id = '${doctorId}'`)).toBe("1");
  expect(sql(`SELECT count(*) FROM agenda_exceptions WHERE doctor_id = '${doctorId}' AND kind = 'time_off' AND date = '${dayOff}'`)).toBe("1");
  expect(sql(`SELECT count(*) FROM doctor_services sd JOIN services s ON s.id = sd.service_id WHERE s.name = '${serviceName}'`)).toBe("1");

  // Each found by search.
  for (const [title, name] of [
    ["Centros", centerName],
    ["Servicios", serviceName],
    ["Médicos", doctorName],
  ] as const) {
    await openKind(page, title);
    await search(page, tag);
    await expect(page.getByRole("status")).toHaveText(/^Encontrados: 1 /);
    await expect(page.getByRole("rowheader", { name })).toBeVisible();
  }
  // A patient, found by their email.
  const patientEmail = `dir-paciente-${tag}@example.test`;
  await openKind(page, "Pacientes");
  await page.getByRole("link", { name: "Nuevo paciente" }).click();
  const newPatient = page.getByRole("form", { name: "Nuevo paciente" });
  await newPatient.getByLabel("Nombre", { exact: true }).fill(`Paciente Directorio ${tag}`);
  await newPatient.getByLabel("Email").fill(patientEmail);
  await newPatient.getByLabel("Idioma de los avisos").selectOption({ label: "English" });
  await newPatient.getByRole("button", { name: "Crear" }).click();
  await expect(page.getByRole("heading", { level: 1, name: `Paciente: Paciente Directorio ${tag}` })).toBeVisible();
  await openKind(page, "Pacientes");
  await search(page, patientEmail);
  await expect(page.getByRole("row").filter({ hasText: patientEmail })).toContainText(`Paciente Directorio ${tag}`);
  expect(sql(`SELECT language FROM patients WHERE email = '${patientEmail}'`)).toBe("en");

  await openKind(page, "Usuarios");
  await search(page, username);
  await expect(page.getByRole("row").filter({ hasText: username })).toContainText("Médico");
  // The doctor's user gets a new password, and signs in with it.
  await page.getByRole("link", { name: username }).click();
  const password = page.getByRole("form", { name: "Nueva contraseña" });
  await password.getByLabel("Nueva contraseña").fill(`pw-${tag}-renewed`);
  await password.getByRole("button", { name: "Guardar cambios" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Contraseña cambiada." })).toBeVisible();
  expect(await login(username, `pw-${tag}-renewed`)).toBeTruthy();

  // The center edited: the new address is there after a reload.
  await openKind(page, "Centros");
  await search(page, centerName);
  await screenshots(page, "admin-directory-list");
  await page.getByRole("link", { name: centerName }).click();
  const edit = page.getByRole("form", { name: "Editar" });
  await edit.getByLabel("Dirección").fill("Calle de Toledo 9, Madrid");
  // and its own reminders: two days and two hours before each visit
  await edit.getByLabel("Recordatorios (minutos antes de la cita)").fill("2880, 120");
  await edit.getByRole("button", { name: "Guardar cambios" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Cambios guardados." })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("form", { name: "Editar" }).getByLabel("Dirección")).toHaveValue("Calle de Toledo 9, Madrid");
  await expect(page.getByRole("form", { name: "Editar" }).getByLabel("Recordatorios (minutos antes de la cita)")).toHaveValue("2880, 120");
  expect(sql(`SELECT reminder_offsets_minutes FROM centers WHERE name = '${centerName}'`)).toBe("{2880,120}");

  // The service deactivated, after a confirmation: gone from the active list, among the inactive.
  await openKind(page, "Servicios");
  await search(page, serviceName);
  await page.getByRole("link", { name: serviceName }).click();
  await page.getByRole("button", { name: "Desactivar" }).click();
  await page.getByRole("button", { name: "Sí, desactivar" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Desactivado." })).toBeVisible();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Inactivo");
  expect(sql(`SELECT active FROM services WHERE name = '${serviceName}'`)).toBe("f");
  await openKind(page, "Servicios");
  await search(page, serviceName);
  await expect(page.getByRole("status")).toHaveText(/^Encontrados: 0 /);
  await page.getByLabel("Mostrar").selectOption({ label: "Solo inactivos" });
  await expect(page.getByRole("row").filter({ hasText: serviceName })).toContainText("Inactivo");

  // The same page in English.
  await page.getByLabel("Idioma").selectOption("en");
  await expect(page.getByRole("heading", { level: 1, name: "Services" })).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: serviceName })).toContainText("Inactive");
});
