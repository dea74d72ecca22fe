# One image for every role: `exporter processor|api|produce|demo|dlq` (the ENTRYPOINT is `exporter`).
# Build: docker build -t sqs-metrics-exporter .     Run: docker run --rm sqs-metrics-exporter --help

# --- builder: resolve and install the locked dependencies into a virtual environment -------------
FROM python:3.11.13-slim-bookworm AS builder

# uv comes from PyPI, pinned, so the build needs nothing but the Python base image.
RUN pip install --no-cache-dir --disable-pip-version-check uv==0.13.9

# Compile bytecode once here (the runtime user cannot write it); copy, do not hard-link, from the
# cache so the venv survives the stage copy; never download a Python: use the base image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra demo --no-install-project

# Then the project itself, as a regular (not editable) install, so the runtime needs no source tree.
COPY README.md ./
COPY exporter ./exporter
RUN uv sync --frozen --no-dev --extra demo --no-editable

# --- runtime: the same Python, the venv, a non-root user; no compilers, no uv, no pip cache ------
FROM python:3.11.13-slim-bookworm AS runtime

# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter

COPY --from=builder /app/.venv /app/.venv
COPY docker/healthcheck.py /usr/local/bin/exporter-healthcheck

# JSON logs in containers; Python output unbuffered so log lines reach `docker logs` at once.
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
