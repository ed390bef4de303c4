/**
 * Firmware: upload a release (.bin for one board), roll it out to a share of
 * that board's Dots and raise the share step by step, pause / resume / abort,
 * watch what landed (offered, updated, stuck: numbers, a bar, and per Dot),
 * roll back (= roll out the previous release to the Dots on this one), pin a
 * Dot to a version. Every refusal shows the API's own sentence.
 */

import { useState } from "preact/hooks";
import { call, type Device, type Release, type Rollout } from "../api/client";
import { invalidate } from "../api/cache";
import { messageOf } from "../api/errors";
import {
  DEVICE_POLL_MS,
  ROLLOUT_POLL_MS,
  keys,
  useDevices,
  useReleases,
  useRollout,
  useRollouts,
} from "../api/resources";
import { useConfirm } from "../ui/confirm";
import { Field, useAction, value } from "../ui/form";
import { Empty, Loaded } from "../ui/status";
import { ago, stamp } from "../ui/time";
import {
  bytes,
  isLive,
  previousRelease,
  shares,
  shortSha,
  uploadFieldOf,
  versionList,
  type UploadField,
} from "./firmware-model";

type Ask = ReturnType<typeof useConfirm>[1];

const touched = (): void => invalidate(keys.releases, keys.rollouts, "firmware-rollout:", keys.devices);

export function FirmwarePage() {
  const releases = useReleases();
  const rollouts = useRollouts(ROLLOUT_POLL_MS);
  const devices = useDevices(DEVICE_POLL_MS);
  const [confirm, ask] = useConfirm();
  const [target, setTarget] = useState<string | null>(null);
  const list = releases.data ?? [];
  const dots = devices.data ?? [];

  return (
    <section class="firmware">
      <h1>Firmware</h1>
      <p class="muted">
        A Dot asks for updates on every boot. Upload a release for its board, roll it out to a share of those Dots,
        and raise the share as the first ones come back healthy.
      </p>
      <div class="two">
        <UploadForm boards={boardsOf(list, dots)} />
        <RolloutForm
          releases={list}
          rollouts={rollouts.data ?? []}
          devices={dots}
          chosen={target}
          choose={setTarget}
          ask={ask}
        />
      </div>

      <h2 id="releases-title">Releases</h2>
      <Loaded resource={releases} what="releases">
        {(items) =>
          items.length === 0 ? (
            <Empty>
              <p>No releases yet. Upload a firmware .bin above to start.</p>
            </Empty>
          ) : (
            <ReleaseTable releases={items} rollouts={rollouts.data ?? []} ask={ask} rollOut={setTarget} />
          )
        }
      </Loaded>

      <h2 id="rollouts-title">Rollouts</h2>
      <Loaded resource={rollouts} what="rollouts">
        {(items) => <RolloutList rollouts={items} releases={list} ask={ask} />}
      </Loaded>

      <h2 id="pins-title">Pinned versions</h2>
      <p class="muted">
        A pinned Dot is offered exactly that version of its board (older or newer) and never a rollout's.
      </p>
      <Loaded resource={devices} what="your Dots">
        {(items) =>
          items.length === 0 ? (
            <Empty>
              <p>No Dots yet. Pair one on the Dots page to pin its firmware.</p>
            </Empty>
          ) : (
            <ul class="plain pins" aria-labelledby="pins-title">
              {items.map((d) => (
                <PinRow key={d.id} device={d} releases={list} />
              ))}
            </ul>
          )
        }
      </Loaded>
      {confirm}
    </section>
  );
}

function boardsOf(releases: readonly Release[], devices: readonly Device[]): string[] {
  const found = new Set<string>();
  for (const d of devices) if (d.board) found.add(d.board);
  for (const r of releases) found.add(r.board);
  return [...found].sort();
}

// --- upload --------------------------------------------------------------------------------

function UploadForm({ boards }: { boards: string[] }) {
  const [board, setBoard] = useState("");
  const [version, setVersion] = useState("");
  const [notes, setNotes] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [fileKey, setFileKey] = useState(0); // remounts the file input to clear it
  const [error, setError] = useState<{ field: UploadField; message: string } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const at = (field: UploadField): string | null => (error?.field === field ? error.message : null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const { release } = await call((c) =>
        c.POST("/api/firmware/releases", {
          // The schema types the file as a string (format: binary); the browser sends the File.
          body: { board: board.trim(), version: version.trim(), notes, file: file as unknown as string },
          bodySerializer: (body) => {
            const form = new FormData();
            form.append("board", body.board);
            form.append("version", body.version);
            form.append("notes", body.notes ?? "");
            form.append("file", file, file.name);
            return form;
          },
        }),
      );
      setDone(`Uploaded ${release.version} for ${release.board} (${bytes(release.size)}).`);
      setVersion("");
      setNotes("");
      setFile(null);
      setFileKey((k) => k + 1);
      touched();
    } catch (e) {
      const message = messageOf(e);
      setError({ field: uploadFieldOf(message), message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="upload-title">
      <h2 id="upload-title">Upload a release</h2>
      <Field id="fw-board" label="Board" error={at("board")} hint="As the firmware names it, e.g. bread-compact-wifi.">
        <input
          id="fw-board"
          required
          maxLength={128}
          list="fw-boards"
          autoComplete="off"
          value={board}
          aria-describedby={at("board") ? "fw-board-error" : "fw-board-hint"}
          onInput={(e) => setBoard(value(e))}
        />
        <datalist id="fw-boards">
          {boards.map((b) => (
            <option key={b} value={b} />
          ))}
        </datalist>
      </Field>
      <Field id="fw-version" label="Version" error={at("version")} hint="Numbers separated by dots, as in the image.">
        <input
          id="fw-version"
          required
          maxLength={80}
          inputMode="decimal"
          autoComplete="off"
          value={version}
          aria-describedby={at("version") ? "fw-version-error" : "fw-version-hint"}
          onInput={(e) => setVersion(value(e))}
        />
      </Field>
      <Field id="fw-notes" label="Notes" error={at("notes")}>
        <textarea id="fw-notes" rows={2} maxLength={4000} value={notes} onInput={(e) => setNotes(value(e))} />
      </Field>
      <Field id="fw-file" label="Firmware file (.bin)" error={at("file")}>
        <input
          key={fileKey}
          id="fw-file"
          type="file"
          required
          accept=".bin,application/octet-stream"
          aria-describedby={at("file") ? "fw-file-error" : undefined}
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
      </Field>
      {done && (
        <p class="state notice" role="status">
          {done}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy || !file}>
        {busy ? "Uploading…" : "Upload release"}
      </button>
    </form>
  );
}

// --- releases ------------------------------------------------------------------------------

function ReleaseTable({
  releases,
  rollouts,
  ask,
  rollOut,
}: {
  releases: Release[];
  rollouts: Rollout[];
  ask: Ask;
  rollOut: (id: string) => void;
}) {
  return (
    <table class="list releases" aria-labelledby="releases-title">
      <thead>
        <tr>
          <th scope="col">Board</th>
          <th scope="col">Version</th>
          <th scope="col">Size</th>
          <th scope="col">SHA-256</th>
          <th scope="col">Uploaded</th>
          <th scope="col">Notes</th>
          <th scope="col">
            <span class="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {releases.map((r) => {
          const live = rollouts.find((o) => o.releaseId === r.id && isLive(o));
          return (
            <tr key={r.id} data-release={r.version}>
              <td>{r.board}</td>
              <th scope="row">
                {r.version}
                {live && <span class="tag">rolling out</span>}
              </th>
              <td class="nums">{bytes(r.size)}</td>
              <td>
                <code title={r.sha256}>{shortSha(r.sha256)}</code>
              </td>
              <td title={stamp(r.createdAt)}>{ago(r.createdAt)}</td>
              <td class="notes">{r.notes || <span class="muted">—</span>}</td>
              <td class="row-actions">
                <button type="button" aria-label={`Roll out ${r.version}`} onClick={() => rollOut(r.id)}>
                  Roll out
                </button>
                <button
                  type="button"
                  class="danger"
                  aria-label={`Delete ${r.version}`}
                  onClick={() =>
                    ask({
                      title: `Delete release ${r.version}?`,
                      body: `The file goes, and with it the history of its ended rollouts. Dots already on ${r.version} keep running it.`,
                      action: "Delete release",
                      onConfirm: async () => {
                        await call((c) =>
                          c.DELETE("/api/firmware/releases/{release_id}", { params: { path: { release_id: r.id } } }),
                        );
                        touched();
                      },
                    })
                  }
                >
                  Delete
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

// --- starting a rollout --------------------------------------------------------------------

function RolloutForm({
  releases,
  rollouts,
  devices,
  chosen,
  choose,
  ask,
}: {
  releases: Release[];
  rollouts: Rollout[];
  devices: Device[];
  chosen: string | null;
  choose: (id: string) => void;
  ask: Ask;
}) {
  const [percent, setPercent] = useState("10");
  const [from, setFrom] = useState("");
  const [only, setOnly] = useState<string[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const release = releases.find((r) => r.id === chosen) ?? releases[0];
  const candidates = devices.filter((d) => !d.board || d.board === release?.board);

  if (!release) {
    return (
      <div class="panel">
        <h2>Start a rollout</h2>
        <p class="muted">Upload a release first.</p>
      </div>
    );
  }

  const start = async (): Promise<void> => {
    const { rollout } = await call((c) =>
      c.POST("/api/firmware/rollouts", {
        body: {
          releaseId: release.id,
          percent: Number(percent),
          fromVersions: versionList(from),
          deviceIds: only.length ? only.filter((id) => candidates.some((d) => d.id === id)) : null,
        },
      }),
    );
    setDone(`Rolling out ${rollout.version} to ${rollout.percent} % of ${rollout.board}.`);
    setFrom("");
    setOnly([]);
    touched();
  };

  const submit = (event: Event): void => {
    event.preventDefault();
    setDone(null);
    const live = rollouts.find((r) => r.board === release.board && isLive(r));
    if (live) {
      // Starting another rollout for the board supersedes the live one: ask first.
      ask({
        title: `Replace the rollout of ${live.version}?`,
        body: `A board has one rollout at a time: ${live.version} (${live.percent} %, ${live.status}) stops being offered and ${release.version} takes over.`,
        action: "Start rollout",
        onConfirm: start,
      });
      return;
    }
    void action.run(start);
  };

  return (
    <form class="panel" onSubmit={submit} aria-labelledby="rollout-title">
      <h2 id="rollout-title">Start a rollout</h2>
      <Field id="ro-release" label="Release">
        <select id="ro-release" value={release.id} onChange={(e) => choose(e.currentTarget.value)}>
          {releases.map((r) => (
            <option key={r.id} value={r.id}>
              {r.version} · {r.board}
            </option>
          ))}
        </select>
      </Field>
      <Field id="ro-percent" label="Share of the board's Dots (%)" hint="Raise it later; the Dots already in stay in.">
        <input
          id="ro-percent"
          type="number"
          min={0}
          max={100}
          step={1}
          required
          value={percent}
          aria-describedby="ro-percent-hint"
          onInput={(e) => setPercent(value(e))}
        />
      </Field>
      <Field
        id="ro-from"
        label="Only Dots on these versions (optional)"
        hint="Comma-separated. Empty: every Dot on an older version."
      >
        <input id="ro-from" autoComplete="off" value={from} aria-describedby="ro-from-hint" onInput={(e) => setFrom(value(e))} />
      </Field>
      <details class="only-dots">
        <summary>Only these Dots (optional){only.length ? ` · ${only.length} chosen` : ""}</summary>
        {candidates.length === 0 ? (
          <p class="muted">No Dots of board {release.board} yet.</p>
        ) : (
          <fieldset class="checks">
            <legend class="sr-only">Dots to offer {release.version}</legend>
            {candidates.map((d) => (
              <label key={d.id} class="check">
                <input
                  type="checkbox"
                  checked={only.includes(d.id)}
                  onChange={(e) =>
                    setOnly(e.currentTarget.checked ? [...only, d.id] : only.filter((id) => id !== d.id))
                  }
                />
                {d.name} <span class="muted">({d.firmwareVersion || "version unknown"})</span>
              </label>
            ))}
          </fieldset>
        )}
      </details>
      {action.error && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
      {done && (
        <p class="state notice" role="status">
          {done}
        </p>
      )}
      <button type="submit" class="primary" disabled={action.busy}>
        Start rollout
      </button>
    </form>
  );
}

// --- watching rollouts ---------------------------------------------------------------------

function RolloutList({ rollouts, releases, ask }: { rollouts: Rollout[]; releases: Release[]; ask: Ask }) {
  const live = rollouts.filter(isLive);
  const ended = rollouts.filter((r) => !isLive(r));
  return (
    <>
      {live.length === 0 ? (
        <Empty>
          <p>No rollout is running. Start one above; Dots are offered the release when they next boot.</p>
        </Empty>
      ) : (
        <ul class="cards rollouts" aria-labelledby="rollouts-title">
          {live.map((r) => (
            <RolloutCard key={r.id} rollout={r} releases={releases} ask={ask} />
          ))}
        </ul>
      )}
      {ended.length > 0 && (
        <details class="panel ended">
          <summary>Ended rollouts ({ended.length})</summary>
          <ul class="cards rollouts">
            {ended.map((r) => (
              <RolloutCard key={r.id} rollout={r} releases={releases} ask={ask} />
            ))}
          </ul>
        </details>
      )}
    </>
  );
}

const STATUS: Record<Rollout["status"], string> = {
  active: "Active",
  paused: "Paused",
  aborted: "Aborted",
  superseded: "Superseded",
};

function RolloutCard({ rollout: r, releases, ask }: { rollout: Rollout; releases: Release[]; ask: Ask }) {
  const [next, setNext] = useState(String(Math.min(100, r.percent + 10)));
  const [open, setOpen] = useState(false);
  const action = useAction();
  const live = isLive(r);
  const previous = previousRelease(r, releases);
  const id = `rollout-${r.id}`;
  const path = { params: { path: { rollout_id: r.id } } };

  const raise = async (event: Event): Promise<void> => {
    event.preventDefault();
    await action.run(async () => {
      await call((c) => c.PUT("/api/firmware/rollouts/{rollout_id}", { ...path, body: { percent: Number(next) } }));
      setNext(String(Math.min(100, Number(next) + 10))); // the next step, ready
      touched();
    });
  };
  const pause = () =>
    action.run(async () => {
      await call((c) => c.POST("/api/firmware/rollouts/{rollout_id}/pause", path));
      touched();
    });
  const resume = () =>
    action.run(async () => {
      await call((c) => c.POST("/api/firmware/rollouts/{rollout_id}/resume", path));
      touched();
    });

  return (
    <li class="card rollout" data-rollout={r.version} data-status={r.status} aria-labelledby={`${id}-title`}>
      <div class="dot-head">
        <h3 id={`${id}-title`}>
          {r.version} <span class="muted">on {r.board}</span>
        </h3>
        <span class={`tag status-${r.status}`}>{STATUS[r.status]}</span>
      </div>
      <p class="meta">
        <span class="percent">{r.percent} %</span> of the board's Dots
        {r.fromVersions ? ` on ${r.fromVersions.join(", ")}` : ""}
        {r.deviceIds ? ` · ${r.deviceIds.length} named Dot${r.deviceIds.length === 1 ? "" : "s"}` : ""} · started{" "}
        <span title={stamp(r.createdAt)}>{ago(r.createdAt)}</span>
        {r.endedAt && (
          <>
            {" "}
            · ended <span title={stamp(r.endedAt)}>{ago(r.endedAt)}</span>
          </>
        )}
      </p>
      <Progress rollout={r} />
      {live && r.percent < 100 && (
        <form class="inline-form" onSubmit={(e) => void raise(e)} aria-label={`Raise the share of ${r.version}`}>
          <Field id={`${id}-percent`} label="Raise to (%)">
            <input
              id={`${id}-percent`}
              type="number"
              min={r.percent}
              max={100}
              step={1}
              required
              value={next}
              onInput={(e) => setNext(value(e))}
            />
          </Field>
          <button type="submit" disabled={action.busy}>
            Raise
          </button>
        </form>
      )}
      {action.error && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
      {live && (
        <div class="actions">
          {r.status === "active" ? (
            <button type="button" disabled={action.busy} onClick={() => void pause()} aria-label={`Pause ${r.version}`}>
              Pause
            </button>
          ) : (
            <button type="button" disabled={action.busy} onClick={() => void resume()} aria-label={`Resume ${r.version}`}>
              Resume
            </button>
          )}
          <button
            type="button"
            class="danger"
            aria-label={`Abort ${r.version}`}
            onClick={() =>
              ask({
                title: `Abort the rollout of ${r.version}?`,
                body: "No Dot is offered it again, and an aborted rollout cannot be resumed. Dots that already updated keep it; roll back to change them.",
                action: "Abort rollout",
                onConfirm: async () => {
                  await call((c) => c.POST("/api/firmware/rollouts/{rollout_id}/abort", path));
                  touched();
                },
              })
            }
          >
            Abort
          </button>
        </div>
      )}
      {previous && r.counts.updated > 0 && (
        <div class="actions">
          <button
            type="button"
            aria-label={`Roll back ${r.version} to ${previous.version}`}
            onClick={() =>
              ask({
                title: `Roll back to ${previous.version}?`,
                body: `This rolls out ${previous.version} to every ${r.board} Dot on ${r.version} (they install the older version when they next boot)${live ? `, and stops the rollout of ${r.version}` : ""}.`,
                action: `Roll out ${previous.version}`,
                onConfirm: async () => {
                  await call((c) =>
                    c.POST("/api/firmware/rollouts", {
                      body: { releaseId: previous.id, percent: 100, fromVersions: [r.version] },
                    }),
                  );
                  touched();
                },
              })
            }
          >
            Roll back to {previous.version}
          </button>
        </div>
      )}
      <details class="per-dot" onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>Per Dot</summary>
        {open && <PerDot rolloutId={r.id} live={live} />}
      </details>
    </li>
  );
}

function Progress({ rollout }: { rollout: Rollout }) {
  const { counts } = rollout;
  const part = shares(counts);
  return (
    <div class="progress">
      <dl class="counts">
        <div data-count="offered">
          <dt>Offered</dt>
          <dd>{counts.offered}</dd>
        </div>
        {counts.downloaded !== null && (
          <div data-count="downloaded">
            <dt>Downloaded</dt>
            <dd>{counts.downloaded}</dd>
          </div>
        )}
        <div data-count="updated">
          <dt>Updated</dt>
          <dd>{counts.updated}</dd>
        </div>
        <div data-count="stuck">
          <dt>Stuck</dt>
          <dd>{counts.stuck}</dd>
        </div>
      </dl>
      {/* The numbers above say it in text; the bar is the same at a glance. */}
      <div class="rollout-bar" aria-hidden="true">
        <span class="updated" style={{ width: `${part.updated}%` }} />
        <span class="stuck" style={{ width: `${part.stuck}%` }} />
        <span class="waiting" style={{ width: `${part.waiting}%` }} />
      </div>
    </div>
  );
}

const DOT_STATE: Record<string, string> = { offered: "Offered", updated: "Updated", stuck: "Stuck" };

function PerDot({ rolloutId, live }: { rolloutId: string; live: boolean }) {
  const detail = useRollout(rolloutId, live ? ROLLOUT_POLL_MS : 0);
  return (
    <Loaded resource={detail} what="the Dots of this rollout">
      {(r) =>
        !r.devices || r.devices.length === 0 ? (
          <p class="muted">No Dot has been offered this release yet.</p>
        ) : (
          <table class="list per-dot-table">
            <caption class="sr-only">Each Dot offered {r.version}</caption>
            <thead>
              <tr>
                <th scope="col">Dot</th>
                <th scope="col">State</th>
                <th scope="col">From → now</th>
                <th scope="col">Offers</th>
                <th scope="col">Last offered</th>
              </tr>
            </thead>
            <tbody>
              {r.devices.map((d) => (
                <tr key={d.deviceId} data-state={d.state}>
                  <th scope="row">{d.name}</th>
                  <td class={`dot-state ${d.state}`}>{DOT_STATE[d.state] ?? d.state}</td>
                  <td>
                    {d.fromVersion ?? "?"} → {d.currentVersion ?? "?"}
                  </td>
                  <td class="nums">{d.offeredCount}</td>
                  <td title={stamp(d.lastOfferedAt)}>{ago(d.lastOfferedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Loaded>
  );
}

// --- pins ----------------------------------------------------------------------------------

function PinRow({ device, releases }: { device: Device; releases: Release[] }) {
  const current = device.firmwarePin ?? "";
  const [pin, setPin] = useState<string | null>(null);
  const chosen = pin ?? current;
  const action = useAction();
  const id = `pin-${device.id}`;
  const versions = [
    ...new Set(releases.filter((r) => !device.board || r.board === device.board).map((r) => r.version)),
  ];
  if (current && !versions.includes(current)) versions.unshift(current);
  if (device.firmwareVersion && !versions.includes(device.firmwareVersion)) versions.push(device.firmwareVersion);

  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    const ok = await action.run(async () => {
      await call((c) =>
        c.PUT("/api/dot-devices/{device_key}", {
          params: { path: { device_key: device.id } },
          body: { firmwarePin: chosen || null },
        }),
      );
      invalidate(keys.devices);
    });
    if (ok) setPin(null);
  };

  return (
    <li data-pin-dot={device.name}>
      <form class="inline-form" onSubmit={(e) => void save(e)} aria-label={`Firmware pin of ${device.name}`}>
        <div class="pin-who">
          <strong>{device.name}</strong>
          <span class="muted">
            {" "}
            · {device.board || "board not reported yet"} · runs {device.firmwareVersion || "an unknown version"} ·{" "}
            {current ? `pinned to ${current}` : "follows rollouts"}
          </span>
        </div>
        <Field id={id} label={`Pin ${device.name} to`} error={action.error}>
          <select id={id} value={chosen} onChange={(e) => setPin(e.currentTarget.value)}>
            <option value="">No pin: follow rollouts</option>
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" disabled={action.busy || chosen === current}>
          {chosen || !current ? "Pin" : "Unpin"}
        </button>
      </form>
    </li>
  );
}
