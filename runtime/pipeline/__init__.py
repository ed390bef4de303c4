"""The speech pipeline seams (VAD, STT, LLM, TTS) and their providers."""
