# Two images from one file (the ENTRYPOINT of both is `exporter`):
#   runtime (the default, last stage): `exporter processor|api|dlq|produce`, and nothing else: no moto,
#            no demo, no dev tools. What Kubernetes and production run.
#            docker build -t sqs-metrics-exporter .
#   demo:    the runtime plus moto's server: `exporter demo`, and `moto_server` as the SQS emulator of
#            the compose stack and of the local Kubernetes overlay.
#            docker build --target demo -t sqs-metrics-exporter-demo .
# Run: docker run --rm sqs-metrics-exporter --help

# --- builder: resolve and install the locked runtime dependencies into a virtual environment ------
FROM python:3.11.13-slim-bookworm AS builder

# uv comes from PyPI, pinned, so the build needs nothing but the Python base image. A registry
# that stalls gets more patience than pip's default (5 retries, 15 s each).
RUN pip install --no-cache-dir --disable-pip-version-check --retries=10 --timeout=60 uv==0.13.9

# Compile bytecode once here (the runtime user cannot write it); copy, do not hard-link, from the
# cache (a cache mount, below) so the venv survives the stage copy; never download a Python: use
# the base image's. One download that stalls must not fail the build: uv 0.13.9 tries each
# request 10 times (default 3) and waits 120 s for an answer (default 30).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_HTTP_RETRIES=10 \
    UV_HTTP_TIMEOUT=120

WORKDIR /src

# Dependencies first, in their own layer, so a code change does not reinstall them. uv's cache
# lives in a cache mount (uv's Docker guide): kept by the engine across builds and stages, never
# in an image, so a rebuild, or a build tried again after a failed download, fetches only what
# it does not hold yet.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, as a regular (not editable) install, so the runtime needs no source tree.
COPY README.md ./
COPY exporter ./exporter
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- demo-builder: the same venv plus the demo extra (moto's server and what it needs) ------------
FROM builder AS demo-builder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra demo --no-editable

# --- base: the same Python, a non-root user, the health probe; no compilers, no uv, no pip cache --
FROM python:3.11.13-slim-bookworm AS base

# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter

COPY docker/healthcheck.py /usr/local/bin/exporter-healthcheck

# JSON logs in containers; Python output unbuffered so log lines reach `docker logs` at once; no
# bytecode written at run time (it is compiled at build, and the root file system may be read-only).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EXPORTER_LOG_FORMAT=json

USER 10001:10001
WORKDIR /app

# The processor serves /health on EXPORTER_METRICS_PORT (9108), the API on EXPORTER_API_PORT (8000);
# the script asks whichever of the two listens. Roles without a port override it in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/exporter-healthcheck"]

EXPOSE 8000 9108
ENTRYPOINT ["exporter"]
CMD ["--help"]

# --- demo: `exporter demo`, and moto's server for the compose stack and the local overlay ---------
FROM base AS demo
COPY --from=demo-builder /app/.venv /app/.venv

# --- runtime (default): what `exporter processor` and `exporter api` need, nothing more -----------
FROM base AS runtime
COPY --from=builder /app/.venv /app/.venv
