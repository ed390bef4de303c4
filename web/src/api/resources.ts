/** Cache keys and loaders for each server resource, in one place. */

import { call } from "./client";
import { useResource } from "./cache";

export const keys = {
  agents: "agents",
  agent: (id: string) => `agent:${id}`,
  versions: (id: string) => `versions:${id}`,
  version: (id: string, n: number) => `version:${id}:${n}`,
  devices: "devices",
  settings: "settings",
  apiKeys: "api-keys",
  secrets: "secrets",
  authConfig: "auth-config",
};

export const useAgents = () =>
  useResource(keys.agents, () => call((c) => c.GET("/api/agents")).then((d) => d.agents));

export const useAgent = (id: string) =>
  useResource(keys.agent(id), () =>
    call((c) => c.GET("/api/agents/{agent_id}", { params: { path: { agent_id: id } } })).then(
      (d) => d.agent,
    ),
  );

export const useVersions = (id: string) =>
  useResource(keys.versions(id), () =>
    call((c) =>
      c.GET("/api/agents/{agent_id}/versions", { params: { path: { agent_id: id } } }),
    ).then((d) => d.versions),
  );

/** Live device state: polled every few seconds while the page is visible. */
export const DEVICE_POLL_MS = 3000;

export const useDevices = (poll = 0) =>
  useResource(
    keys.devices,
    () => call((c) => c.GET("/api/dot-devices")).then((d) => d.devices),
    poll,
  );

export const useSettings = () =>
  useResource(keys.settings, () => call((c) => c.GET("/api/settings")).then((d) => d.settings));

export const useApiKeys = () =>
  useResource(keys.apiKeys, () => call((c) => c.GET("/api/api-keys")).then((d) => d.apiKeys));

export const useSecrets = () =>
  useResource(keys.secrets, () => call((c) => c.GET("/api/secrets")).then((d) => d.secrets));

export const useAuthConfig = () =>
  useResource(keys.authConfig, () => call((c) => c.GET("/api/auth/config")));
