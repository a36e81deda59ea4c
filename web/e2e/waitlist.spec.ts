// The waitlist through the pages: a patient joins it from the booking page, another patient's
// appointment is cancelled, the offer email's link opens the offer page and taking it books
// the freed time; nobody else can open that offer.
import { expect, test } from "@playwright/test";
import { admin, call, clinic, freeStarts, mailText, mails, patient, screenshots, signIn, sql } from "./support";

test("a patient joins the waitlist, is offered a freed time by email and books it from the link", async ({ page, browser }) => {
  test.setTimeout(120_000);
  const c = await clinic();
  const [waiting, holder] = [await patient(), await patient()];
  const start = Math.min(...(await freeStarts(c)));
  const booked = await call<{ id: string; status: string }>(
    "POST",
    "/bookings",
    {
      patient_id: holder.id,
      doctor_id: c.doctors[0]!.id,
      center_id: c.centerId,
      service_id: c.serviceId,
      start: new Date(start).toISOString(),
    },
    await admin(),
  );
  expect(booked.status).toBe(202);
  const heldId = (booked.body as unknown as { booking_id: string }).booking_id;
  await expect.poll(() => sql(`SELECT status FROM appointments WHERE id = '${heldId}'`)).toBe("confirmed");

  // Join from the booking page: the service, the center, any doctor, the next two weeks.
  await signIn(page, waiting.email, waiting.password);
  await page.getByRole("navigation").getByRole("link", { name: "Pedir cita" }).click();
  await page.getByLabel("Servicio").selectOption({ label: `${c.serviceName} (30 min)` });
  await page.getByLabel("Centro", { exact: true }).selectOption({ label: c.centerName });
  const join = page.getByRole("form", { name: "¿Ninguna hora te viene bien?" });
  await expect(join.getByLabel("Desde")).toBeVisible();
  await join.getByRole("button", { name: "Apuntarme a la lista de espera" }).click();
  await expect(join.getByRole("status")).toContainText("Estás en la lista de espera");
  await page.getByRole("navigation").getByRole("link", { name: "Lista de espera" }).click();
  const entries = page.getByRole("list", { name: "Tu lista de espera" }).getByRole("listitem");
  await expect(entries).toHaveCount(1);
  await expect(entries.first()).toContainText(c.serviceName);
  await expect(entries.first()).toContainText("En espera");
  await screenshots(page, "waitlist");

  // The other patient's appointment is cancelled: the freed time is offered by email.
  const cancelled = await call("POST", `/bookings/${heldId}/cancel`, undefined, await admin());
  expect(cancelled.status).toBeLessThan(300);
  const [offerMail] = await mails(waiting.email, (subjects) => subjects.some((s) => s.startsWith("Se ha liberado una cita")));
  const text = await mailText(offerMail!.ID);
  const link = text.match(/https?:\/\/\S+\/app\/waitlist\/offers\/([0-9a-f-]{36})/);
  expect(link, text).not.toBeNull();
  const offerId = link![1]!;

  // Nobody else opens it: the holder, signed in elsewhere, learns nothing.
  const other = await (await browser.newContext({ locale: "es-ES" })).newPage();
  await signIn(other, holder.email, holder.password);
  await expect(other.getByRole("heading", { name: "Mis citas" })).toBeVisible();
  await other.goto(`/app/waitlist/offers/${offerId}`);
  await expect(other.getByRole("alert")).toHaveText("No encontramos esta página o esta cita.");
  await expect(other.getByRole("button", { name: "Reservar esta hora" })).toHaveCount(0);

  // The link opens the offer; taking it books the freed time.
  await page.goto(new URL(link![0]!).pathname);
  await expect(page.getByRole("heading", { name: "Una hora libre para ti" })).toBeVisible();
  await expect(page.getByTestId("offer-status")).toHaveText("Disponible");
  await expect(page.getByText(/Te la guardamos hasta las \d\d:\d\d/)).toBeVisible();
  await expect(page.getByText(c.doctors[0]!.name)).toBeVisible();
  await screenshots(page, "waitlist-offer");
  await page.getByRole("button", { name: "Reservar esta hora" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Cita confirmada" })).toBeVisible();
  const bookingId = page.url().match(/appointments\/([0-9a-f-]{36})/)![1]!;
  expect(
    sql(
      `SELECT status || ' ' || (extract(epoch FROM starts_at) * 1000)::bigint || ' ' || (patient_id = '${waiting.id}') FROM appointments WHERE id = '${bookingId}'`,
    ),
  ).toBe(`confirmed ${start} true`);
  // The entry closed with that booking.
  await page.getByRole("navigation").getByRole("link", { name: "Lista de espera" }).click();
  await expect(entries.first()).toContainText("Con cita");
  await expect.poll(() => sql(`SELECT status FROM waitlist_offers WHERE id = '${offerId}'`)).toBe("taken");
});
