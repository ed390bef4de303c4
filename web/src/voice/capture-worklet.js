// Microphone → PCM16 LE mono 16 kHz, in 100 ms messages (the /voice uplink).
// Runs on the audio thread. Downsampling averages each output sample's window
// of input samples (a box filter), which keeps aliasing out of the speech band
// well enough for STT at 48 → 16 kHz.
class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 16000;
    this.acc = 0;
    this.count = 0;
    this.filled = 0;
    this.out = new Int16Array(1600);
    this.n = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.count += 1;
      this.filled += 1;
      if (this.filled >= this.step) {
        this.filled -= this.step;
        const s = Math.max(-1, Math.min(1, this.acc / this.count));
        this.out[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        this.acc = 0;
        this.count = 0;
        if (this.n === this.out.length) {
          this.port.postMessage(this.out.buffer, [this.out.buffer]);
          this.out = new Int16Array(1600);
          this.n = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
