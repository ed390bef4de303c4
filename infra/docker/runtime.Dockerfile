# syntax=docker/dockerfile:1
# OpenDot voice runtime: `runtime` (device /ws, browser /voice, /ota/, /health, /metrics).
# Its command line is `python -m runtime` (the `opendot` developer tool, which
# spans every part, is not in the image).
#
#   docker build -f infra/docker/runtime.Dockerfile -t opendot-runtime .
#
# Build from the repository root. The offline speech engines (Whisper tiny.en,
# Piper voice, espeak-ng, Silero VAD) ship inside the installed wheels, so the
# image needs no model download at start. Pin the base by digest in production:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, from pyproject alone, so a code change reuses this layer.
# silero-vad hard-requires torch, pipecat-ai a framework; only their bundled ONNX
# models are used (Silero VAD, Smart Turn v3.2), so both install with --no-deps.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['runtime'] + x['local']))" > requirements.txt \
 && pip install --no-cache-dir --requirement requirements.txt \
 && pip install --no-cache-dir --no-deps "silero-vad>=5.1" "pipecat-ai>=1.14,<2"
COPY shared ./shared
COPY runtime ./runtime
# The project's `opendot` console script needs the opendot/ package, which this
# image leaves out: remove it rather than ship a command that cannot start.
RUN pip install --no-cache-dir --no-deps . \
 && rm /opt/venv/bin/opendot \
 && python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="opendot-runtime" \
      org.opencontainers.image.description="OpenDot realtime voice runtime" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
RUN groupadd --system --gid 10001 opendot \
 && useradd --system --uid 10001 --gid opendot --create-home --home-dir /home/opendot opendot
COPY --from=build /opt/venv /opt/venv
# Only non-secret defaults live here; secrets come from the orchestrator's env.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    OPENDOT_ENV=production \
    RUNTIME_HOST=0.0.0.0 \
    RUNTIME_PORT=8787 \
    RUNTIME_SHUTDOWN_DRAIN_S=20
USER 10001:10001
WORKDIR /home/opendot
EXPOSE 8787
# SIGTERM starts the graceful drain: stop accepting sockets, let running turns
# finish for up to RUNTIME_SHUTDOWN_DRAIN_S, then close with 1001 so devices
# reconnect to another container. Give the orchestrator a stop timeout above it
# (compose: stop_grace_period 30s; ECS stopTimeout; k8s terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RUNTIME_PORT', '8787') + '/health', timeout=2)"]
# Exec form: the Python process is PID 1's child under `--init`/tini, or PID 1
# itself, and receives SIGTERM directly (no shell in between swallowing it).
ENTRYPOINT ["python", "-m", "runtime"]
CMD ["runtime"]
