/** The loaded configuration, set once at start. */

import type { ConsoleConfig } from "./config";

let current: ConsoleConfig | null = null;

export function setConfig(config: ConsoleConfig): void {
  current = config;
}

export function config(): ConsoleConfig {
  if (!current) throw new Error("The console configuration is not loaded yet.");
  return current;
}
