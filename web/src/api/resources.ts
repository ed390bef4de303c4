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
  releases: "firmware-releases",
  rollouts: "firmware-rollouts",
  rollout: (id: string) => `firmware-rollout:${id}`,
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

export const useReleases = () =>
  useResource(keys.releases, () =>
    call((c) => c.GET("/api/firmware/releases")).then((d) => d.releases),
  );

/** Rollout progress moves as Dots check in: polled like the Dots' state. */
export const ROLLOUT_POLL_MS = 5000;

export const useRollouts = (poll = 0) =>
  useResource(
    keys.rollouts,
    () => call((c) => c.GET("/api/firmware/rollouts")).then((d) => d.rollouts),
    poll,
  );

export const useRollout = (id: string | null, poll = 0) =>
  useResource(
    id ? keys.rollout(id) : null,
    () =>
      call((c) =>
        c.GET("/api/firmware/rollouts/{rollout_id}", { params: { path: { rollout_id: id ?? "" } } }),
      ).then((d) => d.rollout),
    poll,
  );
