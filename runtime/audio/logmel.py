"""Whisper-style log-mel features, in numpy: what Smart Turn v3 reads.

Smart Turn v3 is a Whisper-tiny encoder with a classifier head, trained on the
features Whisper's own front end computes, here over an 8 s window:

- the waveform is normalised to zero mean and unit variance (over the whole
  window, padding included);
- a short-time Fourier transform with a 400-sample (25 ms) periodic Hann
  window every 160 samples (10 ms), centred (the signal is reflect-padded by
  200 samples on each side), keeping the power |X|^2 of the 201 bins;
- an 80-band mel filter bank on the Slaney scale (linear below 1 kHz,
  logarithmic above) with Slaney area normalisation, 0 Hz to 8 kHz;
- log10 with a floor of 1e-10, clipped to 8 below the window's maximum, then
  scaled as (x + 4) / 4. The STFT gives one frame more than the hop count;
  the last is dropped, so 8 s give 800 frames.

The filter bank and window are built once per process. One 8 s window costs
about 2 ms here (the ONNX model about 10 times that).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz, then logarithmic."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log_step = np.log(6.4) / 27.0
    above = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step
    return np.where(hz >= 1000.0, above, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    linear = mel * 200.0 / 3.0
    above = 1000.0 * np.exp(log_step * (mel - 15.0))
    return np.where(mel >= 15.0, above, linear)


@functools.cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters with Slaney area normalisation."""
    bins = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    top = float(_hz_to_mel(np.array(rate / 2.0)))
    edges = _mel_to_hz(np.linspace(0.0, top, n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    area = 2.0 / (edges[2:] - edges[:-2])
    return (triangles * area[:, None]).astype(np.float32)


@functools.cache
def _hann(n: int = N_FFT) -> np.ndarray:
    # Periodic (not symmetric) Hann, as torch.hann_window and Whisper use.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def log_mel(audio: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """[80, frames] features of float32 mono 16 kHz audio (frames = len // 160)."""
    x = np.asarray(audio, dtype=np.float32)
    if normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _hann(), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)[:-1]
    mel = mel_filters() @ power.T
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


def fit_window(audio: np.ndarray, samples: int) -> np.ndarray:
    """The last `samples` of `audio`, zero-padded at the start when shorter
    (the model was trained on speech that ends at the window's end)."""
    if len(audio) >= samples:
        return audio[len(audio) - samples :]
    out = np.zeros(samples, dtype=np.float32)
    out[samples - len(audio) :] = audio
    return out
