/**
 * Device console over Web Serial: connect to a Dot on USB, read its log live,
 * reset it (a DTR/RTS pulse, as esptool does), clear. Only where the browser
 * offers `navigator.serial` (Chromium on desktop); the page is hidden elsewhere.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { messageOf } from "../api/errors";

interface Port {
  open(options: { baudRate: number }): Promise<void>;
  close(): Promise<void>;
  setSignals(signals: { dataTerminalReady?: boolean; requestToSend?: boolean }): Promise<void>;
  readable: ReadableStream<Uint8Array> | null;
}

interface Serial {
  requestPort(): Promise<Port>;
}

export function serialSupported(): boolean {
  return typeof navigator !== "undefined" && "serial" in navigator;
}

const MAX_CHARS = 200_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function SerialPage() {
  const [port, setPort] = useState<Port | null>(null);
  const [log, setLog] = useState("");
  const [error, setError] = useState<string | null>(null);
  const reader = useRef<ReadableStreamDefaultReader<Uint8Array> | null>(null);
  const pre = useRef<HTMLPreElement>(null);

  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log]);

  if (!serialSupported()) {
    return (
      <section>
        <h1>Device console</h1>
        <p>This browser has no Web Serial. Use Chrome or Edge on a computer to read a Dot's log over USB.</p>
      </section>
    );
  }

  const read = async (p: Port): Promise<void> => {
    const decoder = new TextDecoder();
    while (p.readable) {
      const r = p.readable.getReader();
      reader.current = r;
      try {
        for (;;) {
          const { value, done } = await r.read();
          if (done) return;
          if (value) setLog((text) => (text + decoder.decode(value, { stream: true })).slice(-MAX_CHARS));
        }
      } catch (e) {
        setError(`The connection dropped: ${messageOf(e)}`);
        return;
      } finally {
        r.releaseLock();
      }
    }
  };

  const connect = async (): Promise<void> => {
    setError(null);
    try {
      const p = await (navigator as unknown as { serial: Serial }).serial.requestPort();
      await p.open({ baudRate: 115200 });
      setPort(p);
      void read(p);
    } catch (e) {
      setError(e instanceof DOMException && e.name === "NotFoundError" ? "No port was chosen." : messageOf(e));
    }
  };

  const disconnect = async (): Promise<void> => {
    try {
      await reader.current?.cancel();
      await port?.close();
    } catch {
      // already gone
    }
    setPort(null);
  };

  const reset = async (): Promise<void> => {
    if (!port) return;
    try {
      await port.setSignals({ dataTerminalReady: false, requestToSend: true });
      await sleep(100);
      await port.setSignals({ dataTerminalReady: false, requestToSend: false });
      setLog((text) => `${text}\n--- reset ---\n`);
    } catch (e) {
      setError(messageOf(e));
    }
  };

  return (
    <section>
      <h1>Device console</h1>
      <p class="muted">Connect a Dot by USB to read its log (115200 baud).</p>
      <div class="controls">
        {port ? (
          <button type="button" onClick={() => void disconnect()}>
            Disconnect
          </button>
        ) : (
          <button type="button" class="primary" onClick={() => void connect()}>
            Connect a Dot
          </button>
        )}
        <button type="button" onClick={() => void reset()} disabled={!port}>
          Reset Dot
        </button>
        <button type="button" onClick={() => setLog("")}>
          Clear
        </button>
        <span class="status" role="status">
          {port ? "Connected" : "Not connected"}
        </span>
      </div>
      {error && (
        <p class="state error" role="alert">
          {error}
        </p>
      )}
      <pre class="serial-log" ref={pre} tabIndex={0} aria-label="Device log" aria-live="off">
        {log || "The log appears here."}
      </pre>
    </section>
  );
}
