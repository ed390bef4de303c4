/**
 * Hash routes (`#/agents/…`): they work from any static host (an S3 bucket,
 * Supabase Storage, a CDN) without rewrite rules, and a reload stays on the page.
 */

import { useEffect, useState } from "preact/hooks";

export interface Route {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

export function currentRoute(): Route {
  const raw = location.hash.replace(/^#/, "") || "/agents";
  const [path = "/agents", search = ""] = raw.split("?", 2);
  return { path, parts: path.split("/").filter(Boolean), query: new URLSearchParams(search) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = (): void => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function navigate(path: string): void {
  const target = path.startsWith("#") ? path : `#${path}`;
  if (location.hash !== target) location.hash = target;
}

export function href(path: string): string {
  return `#${path}`;
}
