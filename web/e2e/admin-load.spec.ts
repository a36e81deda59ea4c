// An admin loads the shipped data/ files through the page (the browser reads the CSV and sends
// rows to the bulk endpoints); loading them twice adds nothing; a broken copy reports each bad
// row by file and line.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { screenshots, signIn, sql } from "./support";

const DATA = resolve(import.meta.dirname, "../../data");
const FILES = ["centers.csv", "users.csv", "doctors.csv", "patients.csv", "services.csv"];
const rowsOf = (file: string) => readFileSync(`${DATA}/${file}`, "utf8").trim().split("\n").length - 1;
const counts = () =>
  sql(
    "SELECT (SELECT count(*) FROM centers) || ' ' || (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM doctors) || ' ' || (SELECT count(*) FROM patients) || ' ' || (SELECT count(*) FROM services)",
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
  const row = (file: string) => report.getByRole("row").filter({ has: page.getByRole("rowheader", { name: file }) });

  await load(FILES.map((f) => `${DATA}/${f}`));
  await expect(page.getByRole("status").filter({ hasText: "Carga terminada sin filas con errores." })).toBeVisible();
  for (const file of FILES) {
    // Every row is there: created now or by an earlier load.
    const cells = await row(file).getByRole("cell").allTextContents();
    expect(Number(cells[0]), file).toBe(rowsOf(file));
    expect(Number(cells[1]) + Number(cells[2]), file).toBe(rowsOf(file));
  }
  expect(sql("SELECT count(*) FROM centers WHERE name = 'OdontoCare Madrid Chamberí'")).toBe("1");
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
  ]);
  const bad = page.getByRole("table", { name: "Filas con errores" });
  await expect(bad.getByRole("row")).toHaveCount(1 + 4);
  const lines = (await bad.getByRole("row").allTextContents()).slice(1);
  expect(lines.map((l) => l.match(/^(\w+\.csv)(\d+)/)?.slice(1, 3).join(":"))).toEqual([
    "centers.csv:2",
    "centers.csv:3",
    "patients.csv:2",
    "patients.csv:3",
  ]);
  await expect(bad.getByRole("row").nth(1)).toContainText("timezone");
  await expect(bad.getByRole("row").nth(3)).toContainText("email");
  await screenshots(page, "admin-load-bad-rows");
  expect(counts()).toBe(before);
});
