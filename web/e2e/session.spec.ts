// Everyone: Spanish or English by choice (kept across reloads), forms usable from the keyboard,
// sign-out forgets the token, and a session the API no longer accepts goes back to sign-in.
import { expect, test } from "@playwright/test";
import { patient } from "./support";

test("language switch, keyboard sign-in, sign-out and an expired session", async ({ page }) => {
  const p = await patient();
  await page.goto("/app/login");
  await page.getByRole("combobox", { name: "Idioma" }).selectOption("en");
  await expect(page.getByRole("heading", { name: "Sign in to Citaflow" })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("heading", { name: "Sign in to Citaflow" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "en");

  // Keyboard only: the field has focus, Tab to the password, Enter submits.
  await expect(page.getByLabel("Username or email")).toBeFocused();
  await page.keyboard.type(p.email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(p.password);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "My appointments" })).toBeVisible();
  await expect(page.getByText("You have no upcoming appointments.")).toBeVisible();

  // Sign out: the token is gone from the tab.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Citaflow" })).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.getItem("citaflow.session"))).toBeNull();
  await page.goto("/app/appointments");
  await expect(page.getByRole("heading", { name: "Sign in to Citaflow" })).toBeVisible();

  // A token the API refuses (expired or revoked) ends the session on its first call.
  await page.getByLabel("Username or email").fill(p.email);
  await page.getByLabel("Password").fill(p.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "My appointments" })).toBeVisible();
  await page.evaluate(() => {
    const session = JSON.parse(sessionStorage.getItem("citaflow.session")!);
    sessionStorage.setItem("citaflow.session", JSON.stringify({ ...session, token: `${session.token}x` }));
  });
  await page.reload();
  await expect(page.getByRole("status").filter({ hasText: "Your session expired. Please sign in again." })).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.getItem("citaflow.session"))).toBeNull();
  // Signing in again comes back to the page asked for.
  await page.getByLabel("Username or email").fill(p.email);
  await page.getByLabel("Password").fill(p.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/app\/appointments$/);
});
