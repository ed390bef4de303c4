/**
 * Dots: pair one by the six digits it speaks (or by hand), then watch its live
 * state (polled every few seconds while the page is visible), rename it, bind
 * an agent (pinned to this version, or following the latest), unbind, reset
 * its memory, remove it.
 */

import { useState } from "preact/hooks";
import { call, type Agent, type Device } from "../api/client";
import { invalidate } from "../api/cache";
import { DEVICE_POLL_MS, keys, useAgents, useDevices } from "../api/resources";
import { href } from "../router";
import { useConfirm } from "../ui/confirm";
import { Field, useAction, value } from "../ui/form";
import { Empty, Loaded } from "../ui/status";
import { ago, stamp } from "../ui/time";

/** "12 34-56", "123 456" → "123456": people read codes with pauses. */
export function digitsOnly(text: string): string {
  return text.replace(/\D+/g, "");
}

export function DotsPage() {
  const devices = useDevices(DEVICE_POLL_MS);
  const agents = useAgents();
  const [confirm, ask] = useConfirm();
  return (
    <section>
      <h1>Dots</h1>
      <div class="two">
        <PairByCode />
        <PairManually />
      </div>
      <h2>Your Dots</h2>
      <Loaded resource={devices} what="your Dots">
        {(list) =>
          list.length === 0 ? (
            <Empty>
              <p>
                No Dots yet. Power one on (or run <code>opendot device simulate</code>), listen for the six digits it
                speaks, and enter them above.
              </p>
            </Empty>
          ) : (
            <ul class="cards" aria-label="Your Dots" aria-live="polite">
              {list.map((d) => (
                <DotCard key={d.id} device={d} agents={agents.data ?? []} ask={ask} />
              ))}
            </ul>
          )
        }
      </Loaded>
      {confirm}
    </section>
  );
}

function PairByCode() {
  const [code, setCode] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const digits = digitsOnly(code);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setDone(null);
    await action.run(async () => {
      const { device } = await call((c) => c.POST("/api/device-activations/claim", { body: { code: digits } }));
      invalidate(keys.devices);
      setCode("");
      setDone(`Paired ${device.name}. Bind an agent to it below.`);
    });
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="pair-code-title">
      <h2 id="pair-code-title">Pair by code</h2>
      <Field id="pair-code" label="The six digits the Dot speaks" error={action.error} hint="Spaces and dashes are fine.">
        <input id="pair-code" inputMode="numeric" autoComplete="one-time-code" required value={code} onInput={(e) => setCode(value(e))} />
      </Field>
      {done && (
        <p class="state notice" role="status">
          {done}
        </p>
      )}
      <button type="submit" class="primary" disabled={action.busy || digits.length === 0}>
        {action.busy ? "Pairing…" : "Pair"}
      </button>
    </form>
  );
}

function PairManually() {
  const [name, setName] = useState("");
  const [serial, setSerial] = useState("");
  const [model, setModel] = useState("Dot S3");
  const action = useAction();
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    await action.run(async () => {
      await call((c) =>
        c.POST("/api/dot-devices", { body: { name: name.trim(), serialNumber: serial.trim(), model, ipAddress: "" } }),
      );
      invalidate(keys.devices);
      setName("");
      setSerial("");
    });
  };
  return (
    <details class="panel">
      <summary>Pair manually</summary>
      <form onSubmit={(e) => void submit(e)}>
        <p class="muted">A manually added Dot is a binding target; it gets no credential until it pairs by code.</p>
        <Field id="manual-name" label="Name">
          <input id="manual-name" required value={name} onInput={(e) => setName(value(e))} />
        </Field>
        <Field id="manual-serial" label="Serial number">
          <input id="manual-serial" required value={serial} onInput={(e) => setSerial(value(e))} />
        </Field>
        <Field id="manual-model" label="Model">
          <select id="manual-model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            <option>Dot S3</option>
            <option>Dot Lite</option>
            <option>Dot Dev Board</option>
          </select>
        </Field>
        {action.error && (
          <p class="state error" role="alert">
            {action.error}
          </p>
        )}
        <button type="submit" disabled={action.busy}>
          Add Dot
        </button>
      </form>
    </details>
  );
}

type Ask = ReturnType<typeof useConfirm>[1];

function DotCard({ device, agents, ask }: { device: Device; agents: Agent[]; ask: Ask }) {
  const online = device.availability === "available";
  const id = `dot-${device.id}`;
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(device.name);
  const [picked, setAgentId] = useState<string | null>(null);
  // Agents may arrive after the card: default to the bound one, else the first.
  const agentId = picked ?? device.boundAgentId ?? agents[0]?.id ?? "";
  const [follow, setFollow] = useState(device.followLatest);
  const action = useAction();
  const touched = (): void => invalidate(keys.devices);

  const put = (body: Record<string, unknown>) =>
    call((c) => c.PUT("/api/dot-devices/{device_key}", { params: { path: { device_key: device.id } }, body }));

  const bind = async (event: Event): Promise<void> => {
    event.preventDefault();
    await action.run(async () => {
      await put({ boundAgentId: agentId, followLatest: follow });
      touched();
    });
  };

  const rename = async (event: Event): Promise<void> => {
    event.preventDefault();
    const ok = await action.run(async () => {
      await put({ name: name.trim() });
      touched();
    });
    if (ok) setRenaming(false);
  };

  const boundVersion = device["boundAgentVersion"];
  return (
    <li class="card dot" data-dot={device.serialNumber} aria-labelledby={`${id}-name`}>
      <div class="dot-head">
        <h3 id={`${id}-name`}>{device.name}</h3>
        <span class={`status ${online ? "online" : "offline"}`} data-state={device.availability}>
          <span class="dot-mark" aria-hidden="true" />
          {online ? "Online" : device.availability === "offline" ? "Offline" : "Unknown"}
        </span>
      </div>
      <dl class="facts">
        <dt>Last seen</dt>
        <dd title={stamp(device.lastSeenAt)}>{ago(device.lastSeenAt)}</dd>
        <dt>Serial</dt>
        <dd>{device.serialNumber}</dd>
        <dt>Board</dt>
        <dd>{device.board || device.model}</dd>
        <dt>Firmware</dt>
        <dd>
          {device.firmwareVersion || "unknown"}
          {device.firmwarePin && (
            <>
              {" "}
              · <a href={href("/firmware")}>pinned to {device.firmwarePin}</a>
            </>
          )}
        </dd>
        <dt>Agent</dt>
        <dd>
          {device.boundAgentName ? (
            <>
              <a href={href(`/agents/${device.boundAgentId}`)}>{device.boundAgentName}</a>{" "}
              {device.followLatest
                ? "(follows the latest version)"
                : typeof boundVersion === "number"
                  ? `(pinned to version ${boundVersion})`
                  : "(pinned)"}
            </>
          ) : (
            "none bound"
          )}
        </dd>
      </dl>
      {renaming ? (
        <form class="inline-form" onSubmit={(e) => void rename(e)}>
          <Field id={`${id}-rename`} label="Name">
            <input id={`${id}-rename`} required maxLength={200} value={name} onInput={(e) => setName(value(e))} />
          </Field>
          <button type="submit" class="primary" disabled={action.busy}>
            Save name
          </button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <form class="inline-form" onSubmit={(e) => void bind(e)} aria-label={`Bind an agent to ${device.name}`}>
          <Field id={`${id}-agent`} label="Agent">
            <select id={`${id}-agent`} value={agentId} onChange={(e) => setAgentId(e.currentTarget.value)}>
              {agents.length === 0 && <option value="">No agents yet</option>}
              {agents.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} (version {a.version})
                </option>
              ))}
            </select>
          </Field>
          <label class="check">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
            Follow the latest version
          </label>
          <button type="submit" class="primary" disabled={action.busy || !agentId}>
            {device.boundAgentId ? "Rebind" : "Bind"}
          </button>
        </form>
      )}
      {action.error && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
      <div class="actions">
        <a class="button" href={href(`/history?device=${device.id}`)}>
          History
        </a>
        <button type="button" onClick={() => setRenaming(true)} aria-label={`Rename ${device.name}`}>
          Rename
        </button>
        {device.boundAgentId && (
          <button
            type="button"
            aria-label={`Unbind ${device.name}`}
            onClick={() =>
              ask({
                title: `Unbind ${device.name}?`,
                body: `It stops running ${device.boundAgentName ?? "its agent"} from its next conversation.`,
                action: "Unbind",
                onConfirm: async () => {
                  await put({ boundAgentId: null });
                  touched();
                },
              })
            }
          >
            Unbind
          </button>
        )}
        <button
          type="button"
          aria-label={`Reset the memory of ${device.name}`}
          onClick={() =>
            ask({
              title: `Reset the memory of ${device.name}?`,
              body: "It forgets the conversation so far; its history stays visible here.",
              action: "Reset memory",
              onConfirm: async () => {
                await call((c) =>
                  c.POST("/api/dot-devices/{device_key}/memory/reset", { params: { path: { device_key: device.id } } }),
                );
                touched();
              },
            })
          }
        >
          Reset memory
        </button>
        <button
          type="button"
          class="danger"
          aria-label={`Remove ${device.name}`}
          onClick={() =>
            ask({
              title: `Remove ${device.name}?`,
              body: "Its credential is revoked: it must be paired again by code to come back.",
              action: "Remove Dot",
              onConfirm: async () => {
                await call((c) => c.DELETE("/api/dot-devices/{device_key}", { params: { path: { device_key: device.id } } }));
                touched();
              },
            })
          }
        >
          Remove
        </button>
      </div>
    </li>
  );
}
