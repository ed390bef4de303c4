/**
 * The agent as the editor holds it, and what changed between two of them
 * (the version diff and the "only send what changed" save).
 */

import type { Agent, Stage, StageSetting } from "../api/client";
import { toolFieldKeys, toolsOf, type Tools } from "./tools-model";

export interface Draft {
  name: string;
  description: string;
  architecture: Agent["architecture"];
  realtime: Record<string, unknown>;
  tools: Tools;
  pipeline: Stage[];
}

export function draftOf(agent: Agent): Draft {
  return {
    name: agent.name,
    description: agent.description,
    architecture: agent.architecture,
    realtime: structuredClone(agent.realtime),
    tools: toolsOf(structuredClone(agent.tools ?? {})),
    pipeline: structuredClone(agent.pipeline),
  };
}

/** The stages as the API stores them: provider, model and values only. */
export function compactPipeline(stages: Stage[]): Record<string, unknown>[] {
  return stages.map((stage) => ({
    id: stage.id,
    provider: stage.provider,
    model: stage.model,
    settings: Object.fromEntries((stage.settings ?? []).map((s) => [s.key, s.value])),
  }));
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The body of a save: only the parts that differ from `base`. */
export function changes(base: Draft, draft: Draft): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (draft.name.trim() !== base.name) body["name"] = draft.name.trim();
  if (draft.description !== base.description) body["description"] = draft.description;
  if (draft.architecture !== base.architecture) body["architecture"] = draft.architecture;
  if (!same(draft.realtime, base.realtime)) body["realtime"] = draft.realtime;
  if (!same(draft.tools, base.tools)) body["tools"] = draft.tools;
  const pipeline = compactPipeline(draft.pipeline);
  if (!same(pipeline, compactPipeline(base.pipeline))) body["pipeline"] = pipeline;
  return body;
}

export interface Change {
  path: string;
  label: string;
  before: string;
  after: string;
}

function show(value: unknown): string {
  if (value === undefined || value === null || value === "") return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

function flatten(agent: Draft): Map<string, [string, unknown]> {
  const out = new Map<string, [string, unknown]>();
  out.set("name", ["Name", agent.name]);
  out.set("description", ["Description", agent.description]);
  out.set("architecture", ["Architecture", agent.architecture]);
  const walk = (prefix: string, label: string, value: unknown): void => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        walk(`${prefix}.${k}`, `${label} › ${k}`, v);
      }
    } else {
      out.set(prefix, [label, value]);
    }
  };
  walk("realtime", "Speech-to-speech", agent.realtime);
  // Webhooks and servers by name (an entry is one row: its whole definition).
  const { webhooks, mcpServers, ...rest } = agent.tools;
  walk("tools", "Tools", rest);
  webhooks.forEach((hook, i) => out.set(`tools.webhook.${hook.name || i}`, [`Tools › webhook ${hook.name || i + 1}`, hook]));
  mcpServers.forEach((server, i) =>
    out.set(`tools.mcp.${server.name || i}`, [`Tools › MCP server ${server.name || i + 1}`, server]),
  );
  for (const stage of agent.pipeline) {
    const name = stage.label || stage.id;
    out.set(`${stage.id}.provider`, [`${name} › provider`, stage.provider]);
    out.set(`${stage.id}.model`, [`${name} › model`, stage.model]);
    for (const setting of stage.settings ?? []) {
      out.set(`${stage.id}.${setting.key}`, [`${name} › ${setting.label || setting.key}`, setting.value]);
    }
  }
  return out;
}

/** What changed from `older` to `newer`, in the editor's order. */
export function diff(older: Draft, newer: Draft): Change[] {
  const a = flatten(older);
  const b = flatten(newer);
  const result: Change[] = [];
  for (const [path, [label, after]] of b) {
    const before = a.get(path)?.[1];
    if (!same(before, after)) result.push({ path, label, before: show(before), after: show(after) });
  }
  for (const [path, [label, before]] of a) {
    if (!b.has(path)) result.push({ path, label, before: show(before), after: "—" });
  }
  return result;
}

/** Every field key an API sentence may name (for placing it at its field). */
export function fieldKeys(draft: Draft): string[] {
  const keys = ["name", "description", "architecture"];
  for (const key of Object.keys(draft.realtime)) keys.push(`realtime.${key}`);
  keys.push(...toolFieldKeys(draft.tools));
  for (const stage of draft.pipeline) {
    keys.push(`${stage.id}.provider`, `${stage.id}.model`);
    for (const s of stage.settings ?? []) keys.push(`${stage.id}.${s.key}`);
  }
  return keys;
}

export interface Option {
  label: string;
  value: string;
}

export function optionsOf(setting: StageSetting): Option[] {
  const raw = setting["options"];
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((o: unknown) => {
    if (o && typeof o === "object" && "value" in o) {
      const value = String((o as { value: unknown }).value);
      const label = "label" in o ? String((o as { label: unknown }).label) : value;
      return [{ label, value }];
    }
    return typeof o === "string" ? [{ label: o, value: o }] : [];
  });
}

/** Providers a stage may use: the API's list, else what its fallback setting offers. */
export function providerOptions(stage: Stage): string[] {
  const listed = stage["providerOptions"];
  const found = Array.isArray(listed) ? listed.map(String) : [];
  if (!found.length) {
    const fallback = (stage.settings ?? []).find((s) => s.key === "fallback_providers");
    if (fallback) found.push(...optionsOf(fallback).map((o) => o.value));
  }
  if (!found.includes(stage.provider)) found.unshift(stage.provider);
  return found;
}
