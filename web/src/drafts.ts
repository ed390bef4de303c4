/**
 * Unsaved edits kept in sessionStorage, so an expired session (sign in, come
 * back) or a reload does not lose them. Cleared once saved.
 */

const PREFIX = "opendot.draft.";

export function loadDraft<T>(key: string): T | null {
  try {
    const raw = sessionStorage.getItem(PREFIX + key);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

export function saveDraft(key: string, value: unknown): void {
  try {
    sessionStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the edit still lives on the page.
  }
}

export function clearDraft(key: string): void {
  try {
    sessionStorage.removeItem(PREFIX + key);
  } catch {
    // nothing kept, nothing to clear
  }
}
