# syntax=docker/dockerfile:1
# OpenDot platform API as a plain ASGI container (`api`: uvicorn), for hosts
# where AWS Lambda is not wanted. The same image runs the one-shot migration
# job: `db migrate --migrations-dir /opt/opendot/supabase/migrations`. Its
# command line is `python -m functions` (the `opendot` developer tool, which
# spans every part, is not in the image).
#
#   docker build -f infra/docker/functions.Dockerfile -t opendot-api .
#
# It carries only the core dependencies (the Lambda package's set) plus uvicorn:
# no numpy, no audio, no speech engines. Pin the base by digest in production:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
# Core dependencies plus the uvicorn requirement of the runtime extra (the
# only server piece the API needs outside Lambda).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + [r for r in x['runtime'] if r.startswith('uvicorn')]))" > requirements.txt \
 && pip install --no-cache-dir --requirement requirements.txt
COPY shared ./shared
COPY functions ./functions
# The project's `opendot` console script needs the opendot/ package, which this
# image leaves out: remove it rather than ship a command that cannot start.
RUN pip install --no-cache-dir --no-deps . \
 && rm /opt/venv/bin/opendot \
 && python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="opendot-api" \
      org.opencontainers.image.description="OpenDot platform API (ASGI)" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
RUN groupadd --system --gid 10001 opendot \
 && useradd --system --uid 10001 --gid opendot --create-home --home-dir /home/opendot opendot
COPY --from=build /opt/venv /opt/venv
COPY supabase/migrations /opt/opendot/supabase/migrations
# Only non-secret defaults live here; secrets come from the orchestrator's env.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPENDOT_ENV=production \
    PLATFORM_AUTH_REQUIRED=true \
    PLATFORM_API_HOST=0.0.0.0 \
    PLATFORM_API_PORT=8788
USER 10001:10001
WORKDIR /home/opendot
EXPOSE 8788
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PLATFORM_API_PORT', '8788') + '/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "functions"]
CMD ["api"]
