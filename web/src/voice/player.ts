/**
 * Reply audio, played in order as it arrives: whole chunks (`assistant_audio`,
 * mp3 or wav) are decoded, PCM deltas (`assistant_pcm_delta`) are wrapped as
 * they are. `stop()` cuts everything at once (barge-in).
 */

function bytesOf(base64: string): Uint8Array {
  const raw = atob(base64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export class Player {
  private context: AudioContext | null = null;
  private next = 0;
  private sources = new Set<AudioBufferSourceNode>();
  private chain: Promise<void> = Promise.resolve();
  private generation = 0;
  /** Seconds of reply audio received in this turn. */
  seconds = 0;

  private ctx(): AudioContext {
    if (!this.context) this.context = new AudioContext();
    return this.context;
  }

  /** Call from a click so the browser lets audio play. */
  unlock(): void {
    void this.ctx().resume();
  }

  private schedule(buffer: AudioBuffer): void {
    const ctx = this.ctx();
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const at = Math.max(ctx.currentTime + 0.02, this.next);
    source.start(at);
    this.next = at + buffer.duration;
    this.seconds += buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
  }

  playEncoded(base64: string): void {
    const generation = this.generation;
    const data = bytesOf(base64).buffer as ArrayBuffer;
    // Decoding is asynchronous; the chain keeps chunks in their order.
    this.chain = this.chain.then(async () => {
      try {
        const buffer = await this.ctx().decodeAudioData(data);
        if (generation === this.generation) this.schedule(buffer);
      } catch {
        // An undecodable chunk is skipped; the text is still on screen.
      }
    });
  }

  playPcm16(base64: string, sampleRate: number): void {
    const bytes = bytesOf(base64);
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 2));
    if (!samples.length) return;
    const buffer = this.ctx().createBuffer(1, samples.length, sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = (samples[i] ?? 0) / 0x8000;
    const generation = this.generation;
    this.chain = this.chain.then(() => {
      if (generation === this.generation) this.schedule(buffer);
    });
  }

  stop(): void {
    this.generation += 1;
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // already ended
      }
    }
    this.sources.clear();
    this.next = 0;
  }

  close(): void {
    this.stop();
    void this.context?.close();
    this.context = null;
  }
}
