/** The microphone as a stream of PCM16 16 kHz chunks (an AudioWorklet does the work). */

import workletUrl from "./capture-worklet.js?url";

export interface Mic {
  stop(): void;
}

export async function openMic(onChunk: (pcm: ArrayBuffer) => void): Promise<Mic> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser cannot use a microphone here (it needs https or localhost).");
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    const name = error instanceof DOMException ? error.name : "";
    throw new Error(
      name === "NotAllowedError"
        ? "Microphone access was refused. Allow it in the browser's site settings."
        : name === "NotFoundError"
          ? "No microphone was found."
          : "The microphone could not be opened.",
    );
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule(workletUrl);
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm16-capture");
  node.port.onmessage = (event: MessageEvent<ArrayBuffer>) => onChunk(event.data);
  source.connect(node);
  return {
    stop() {
      node.port.onmessage = null;
      source.disconnect();
      node.disconnect();
      for (const track of stream.getTracks()) track.stop();
      void context.close();
    },
  };
}
