// Browser tests against the real stack `./dev up` started (the URLs come from .run/stack.env,
// loaded by `./dev test`), in Debian's Chromium: Playwright's own browser download cannot work
// here.
import { defineConfig } from "@playwright/test";

const api = process.env.CITAFLOW_DEV_API_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  testDir: "e2e",
  outputDir: "../.run/web/test-results",
  // Each test makes its own clinic, doctors and patients, so they could run side by side; one
  // at a time is faster on two shared cores (the stack and Chromium share them).
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  use: {
    baseURL: api,
    browserName: "chromium",
    viewport: { width: 1280, height: 800 },
    locale: "es-ES",
    launchOptions: {
      executablePath: process.env.CITAFLOW_DEV_CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox"],
    },
    trace: "retain-on-failure",
  },
});
