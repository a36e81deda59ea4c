// A patient who edits the URL to another patient's appointment learns nothing about it, and
// cannot cancel or move it from the pages.
import { expect, test } from "@playwright/test";
import { admin, call, clinic, freeStarts, patient, signIn } from "./support";

test("a patient cannot reach another patient's appointment by editing the URL", async ({ page }) => {
  const c = await clinic();
  const [owner, other] = [await patient(), await patient()];
  const start = new Date(Math.min(...(await freeStarts(c)))).toISOString();
  const booked = await call<{ id: string; status: string }>(
    "POST",
    "/bookings",
    { patient_id: owner.id, doctor_id: c.doctors[0]!.id, center_id: c.centerId, service_id: c.serviceId, start },
    await admin(),
  );
  expect(booked.status).toBe(202);
  const id = (booked.body as unknown as { booking_id: string }).booking_id;

  await signIn(page, other.email, other.password);
  await expect(page.getByRole("heading", { name: "Mis citas" })).toBeVisible();
  await page.goto(`/app/appointments/${id}`);
  await expect(page.getByRole("alert")).toHaveText("No encontramos esta página o esta cita.");
  await expect(page.getByText(c.doctors[0]!.name)).toHaveCount(0);
  await expect(page.getByText(c.centerName)).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Anular la cita" })).toHaveCount(0);

  await page.goto(`/app/book?reschedule=${id}`);
  await expect(page.getByRole("alert").first()).toBeVisible();
  await expect(page.getByText(c.doctors[0]!.name)).toHaveCount(0);
  // Their own list stays empty.
  await page.goto("/app/appointments");
  await expect(page.getByText("No tienes citas próximas.")).toBeVisible();
});
