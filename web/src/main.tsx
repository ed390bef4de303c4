/** Start: read config.json, configure the API client and sign-in, then render. */

import { render } from "preact";
import { configureApi } from "./api/client";
import { App } from "./app";
import { loadConfig, type ConsoleConfig } from "./config";
import { expired, refresh, startAuth, token } from "./auth/session";
import { setConfig } from "./context";
import "./styles.css";

async function start(): Promise<void> {
  const root = document.getElementById("app");
  if (!root) return;
  let config: ConsoleConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    root.innerHTML = "";
    const p = document.createElement("p");
    p.className = "state error";
    p.setAttribute("role", "alert");
    p.textContent = error instanceof Error ? error.message : String(error);
    root.append(p);
    return;
  }
  setConfig(config);
  configureApi(config.apiUrl, { token, refresh, expired });
  render(<App />, root);
  await startAuth(config).catch(() => undefined);
}

void start();
