/**
 * A confirmation for actions that lose something, on a native <dialog>
 * (focus trapped and restored, Escape cancels, the keyboard works).
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { messageOf } from "../api/errors";

export interface ConfirmProps {
  title: string;
  body: string;
  action: string;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}

export function Confirm({ title, body, action, onConfirm, onClose }: ConfirmProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);

  const confirm = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      ref.current?.close();
      onClose();
    } catch (e) {
      setError(messageOf(e));
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onClose={onClose}>
      <h2 id="confirm-title">{title}</h2>
      <p>{body}</p>
      {error && (
        <p class="state error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="button" onClick={() => ref.current?.close()} disabled={busy}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => void confirm()} disabled={busy}>
          {busy ? "Working…" : action}
        </button>
      </div>
    </dialog>
  );
}

/** `const [confirm, ask] = useConfirm()`; render `{confirm}`, call `ask({...})`. */
export function useConfirm(): [preact.JSX.Element | null, (props: Omit<ConfirmProps, "onClose">) => void] {
  const [props, setProps] = useState<Omit<ConfirmProps, "onClose"> | null>(null);
  const element = props ? <Confirm {...props} onClose={() => setProps(null)} /> : null;
  return [element, setProps];
}
