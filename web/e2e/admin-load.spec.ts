// An admin loads the eight shipped data/ files through the page (the browser reads the CSV and
// sends rows to the bulk endpoints; the agenda files' names looked up to ids); loading them
// twice adds nothing; a broken copy reports each bad row by file and line.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { screenshots, signIn, sql } from "./support";

const DATA = resolve(import.meta.dirname, "../../data");
const FILES = [
  "centers.csv",
  "users.csv",
  "doctors.csv",
  "patients.csv",
  "services.csv",
  "doctor_services.csv",
  "working_hours.csv",
  "agenda_exceptions.csv",
];
const rowsOf = (file: string) => readFileSync(`${DATA}/${file}`, "utf8").trim().split("\n").length - 1;
const counts = () =>
  sql(
    "SELECT concat_ws(' ', (SELECT count(*) FROM centers), (SELECT count(*) FROM users), (SELECT count(*) FROM doctors), (SELECT count(*) FROM patients), (SELECT count(*) FROM services), (SELECT count(*) FROM doctor_services), (SELECT count(*) FROM working_hours), (SELECT count(*) FROM agenda_exceptions))",
  );

test("an admin loads the shipped CSV files; twice adds nothing; a broken copy names each bad row", async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, process.env.CITAFLOW_DEV_ADMIN_USERNAME!, process.env.CITAFLOW_DEV_ADMIN_PASSWORD!);
  await page.getByRole("link", { name: "Carga inicial" }).click();
  const load = async (files: Parameters<typeof page.setInputFiles>[1]) => {
    await page.getByLabel("Ficheros CSV").setInputFiles(files);
    await page.getByRole("button", { name: "Cargar" }).click();
    await expect(page.getByRole("button", { name: "Cargar" })).toBeEnabled({ timeout: 120_000 });
  };
  const report = page.getByRole("table", { name: "Carga inicial desde CSV" });
  const row = (file: string) => report.getByRole("row").filter({ has: page.getByRole("rowheader", { name: file, exact: true }) });

  await load(FILES.map((f) => `${DATA}/${f}`));
  await expect(page.getByRole("status").filter({ hasText: "Carga terminada sin filas con errores." })).toBeVisible();
  for (const file of FILES) {
    // Every row is there: created now or by an earlier load.
    const cells = await row(file).getByRole("cell").allTextContents();
    expect(Number(cells[0]), file).toBe(rowsOf(file));
    expect(Number(cells[1]) + Number(cells[2]), file).toBe(rowsOf(file));
  }
  expect(sql("SELECT count(*) FROM centers WHERE name = 'OdontoCare Madrid Chamberí'")).toBe("1");
  // The agenda rows name the directory: every range of the files is held by a doctor of theirs.
  // (other tests may add hours at these centers too, so at least the file's)
  const shipped = Number(
    sql(
      "SELECT count(*) FROM working_hours h JOIN doctors d ON d.id = h.doctor_id JOIN users u ON u.id = d.user_id JOIN centers c ON c.id = h.center_id WHERE c.name LIKE 'OdontoCare%' AND u.username LIKE 'dr%'",
    ),
  );
  expect(shipped).toBeGreaterThanOrEqual(rowsOf("working_hours.csv"));
  await screenshots(page, "admin-load");

  const before = counts();
  await load(FILES.map((f) => `${DATA}/${f}`));
  for (const file of FILES) {
    // Polled: right after the click the report may still show the first load's counts.
    await expect
      .poll(async () => (await row(file).getByRole("cell").allTextContents()).map(Number), { message: file })
      .toEqual([rowsOf(file), 0, rowsOf(file)]);
  }
  expect(counts()).toBe(before);

  const broken = (name: string, text: string) => ({ name, mimeType: "text/csv", buffer: Buffer.from(text) });
  await load([
    broken("centers.csv", 'name,address,timezone,language\nCentro roto,"Calle 1, Madrid",Mars/Olympus,es\n,Calle 2,Europe/Madrid,es\n'),
    broken("patients.csv", "email,name,phone,language,status\nnot-an-email,Ana,,es,ACTIVE\nbien-roto@example.test,Bea,+34 600,xx,ACTIVE\n"),
    broken(
      "working_hours.csv",
      "doctor,center,weekday,start,end\nnadie.existe,OdontoCare Madrid Chamberí,monday,09:00,10:00\n" +
        "dr.ivan.soler,Centro que no existe,monday,09:00,10:00\ndr.ivan.soler,Centro que no existe,Monday,9:00,10:00\n",
    ),
  ]);
  const bad = page.getByRole("table", { name: "Filas con errores" });
  await expect(bad.getByRole("row")).toHaveCount(1 + 7);
  const lines = (await bad.getByRole("row").allTextContents()).slice(1);
  expect(lines.map((l) => l.match(/^(\w+\.csv)(\d+)/)?.slice(1, 3).join(":"))).toEqual([
    "centers.csv:2",
    "centers.csv:3",
    "patients.csv:2",
    "patients.csv:3",
    "working_hours.csv:2",
    "working_hours.csv:3",
    "working_hours.csv:4",
  ]);
  await expect(bad.getByRole("row").nth(1)).toContainText("timezone");
  await expect(bad.getByRole("row").nth(3)).toContainText("email");
  await expect(bad.getByRole("row").nth(5)).toContainText('no doctor has the username "nadie.existe"');
  await expect(bad.getByRole("row").nth(6)).toContainText('no center is called "Centro que no existe"');
  await expect(bad.getByRole("row").nth(7)).toContainText("repetida: la misma clave que la línea 3");
  await screenshots(page, "admin-load-bad-rows");
  expect(counts()).toBe(before);
});
