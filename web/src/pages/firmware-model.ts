/**
 * What the Firmware page works out from the API's answers: sizes for people,
 * the release a rollback goes to, which upload field an API sentence is about.
 */

import type { Release, Rollout } from "../api/client";

export function bytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / (1024 * 1024)).toFixed(2)} MiB`;
}

export const shortSha = (sha: string): string => sha.slice(0, 12);

/** Active and paused rollouts still offer (or will again); the others ended. */
export const isLive = (r: Rollout): boolean => r.status === "active" || r.status === "paused";

/**
 * The release a rollback of `rollout` installs: the next older release of the
 * same board. The API lists releases by board, newest version first (the
 * firmware's own comparison), so it is the one after the rolled-out release.
 */
export function previousRelease(rollout: Rollout, releases: readonly Release[]): Release | null {
  const board = releases.filter((r) => r.board === rollout.board);
  const at = board.findIndex((r) => r.id === rollout.releaseId);
  return at >= 0 ? (board[at + 1] ?? null) : null;
}

export type UploadField = "board" | "version" | "notes" | "file";

/** Which field of the upload form an API sentence is about (the rest: the file). */
export function uploadFieldOf(message: string): UploadField {
  if (/^board\b/.test(message)) return "board";
  if (/^notes\b/.test(message)) return "notes";
  if (/^version\b/.test(message) || /^Version .* already exists/.test(message)) return "version";
  return "file";
}

/** "1.0.0, 1.0.1" or one per line → ["1.0.0", "1.0.1"]; empty → null (every older version). */
export function versionList(text: string): string[] | null {
  const items = text
    .split(/[\s,]+/)
    .map((v) => v.trim())
    .filter(Boolean);
  return items.length ? items : null;
}

/** Shares of the bar: updated, stuck, and offered but not there yet (of all offered). */
export function shares(counts: Rollout["counts"]): { updated: number; stuck: number; waiting: number } {
  const total = Math.max(1, counts.offered);
  const waiting = Math.max(0, counts.offered - counts.updated - counts.stuck);
  return {
    updated: (counts.updated / total) * 100,
    stuck: (counts.stuck / total) * 100,
    waiting: (waiting / total) * 100,
  };
}
