// The directory every page names things from (centers with their time zones, doctors,
// services), loaded once per session and shared.
import { useEffect, useState } from "react";
import { api, must, type Schemas } from "./api/client";

export interface Directory {
  centers: Map<string, Schemas["Center"]>;
  doctors: Map<string, Schemas["Doctor"]>;
  services: Map<string, Schemas["Service"]>;
}

let cached: Promise<Directory> | null = null;

async function load(): Promise<Directory> {
  const page = { page: 1, per_page: 200 } as const;
  const [centers, doctors, services] = await Promise.all([
    must(api.GET("/centers", { params: { query: page } })),
    must(api.GET("/doctors", { params: { query: page } })),
    must(api.GET("/services", { params: { query: page } })),
  ]);
  return {
    centers: new Map(centers.items.map((c) => [c.id, c])),
    doctors: new Map(doctors.items.map((d) => [d.id, d])),
    services: new Map(services.items.map((s) => [s.id, s])),
  };
}

/** Forgets the loaded directory (after an admin changed it, or a new session). */
export function reloadDirectory() {
  cached = null;
}

export function useDirectory(): { directory: Directory | null; error: unknown } {
  const [state, setState] = useState<{ directory: Directory | null; error: unknown }>({ directory: null, error: null });
  useEffect(() => {
    let live = true;
    cached ??= load();
    cached.then(
      (directory) => live && setState({ directory, error: null }),
      (error) => {
        cached = null;
        if (live) setState({ directory: null, error });
      },
    );
    return () => {
      live = false;
    };
  }, []);
  return state;
}
