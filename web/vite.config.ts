import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The app is served by ingest-api at `/` (pages under /app/, hashed files under /assets/).
// `npm run dev` proxies the API to a running stack (CITAFLOW_DEV_API_URL).
const api = process.env.CITAFLOW_DEV_API_URL ?? "http://127.0.0.1:8080";
const apiPaths = [
  "/auth", "/availability", "/bookings", "/centers", "/doctors", "/patients", "/services",
  "/users", "/agenda", "/working-hours", "/openapi.json",
];

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // No inline script or style: the Content-Security-Policy allows files from 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: { proxy: Object.fromEntries(apiPaths.map((p) => [p, api])) },
  test: { include: ["src/**/*.test.ts"] },
});
