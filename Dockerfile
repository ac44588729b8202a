# One image for every Coursewright process: `coursewright serve` (the default), `coursewright worker`,
# `coursewright migrate`. Build and run: docs/deployment.md.
#
# The app reads templates/, static/, prompts/ and piccolo_migrations/ from its source tree (app/settings.py
# PROJECT_ROOT), so the project is installed in editable mode at /app and the final stage keeps the same
# paths: the venv's link to /app/app stays valid after the copy.

ARG PYTHON_VERSION=3.11
ARG NODE_VERSION=22

# Front-end files come from the npm registry (package-lock.json), as in `make vendor`; the copies below must
# name the same files as the Makefile's static/vendor/.installed rule (tests/ops/test_dockerfile.py checks it).
FROM node:${NODE_VERSION}-bookworm-slim AS vendor
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
    && mkdir -p static/vendor/swagger-ui \
    && cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js \
    && cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css \
    && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
       static/vendor/swagger-ui/

# Every Python dependency installs from a wheel, so the builder needs no compiler either.
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY tasks ./tasks
# The [sentry] extra: SENTRY_DSN is optional at run time, but a set DSN without the SDK refuses to start.
RUN pip install --editable ".[sentry]"
COPY templates ./templates
COPY static ./static
COPY prompts ./prompts
COPY piccolo_migrations ./piccolo_migrations
COPY --from=vendor /src/static/vendor ./static/vendor

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# WeasyPrint (the PDF export) loads Pango and HarfBuzz at run time and needs at least one font.
# Debian's package versions move with its security updates, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so Kubernetes can check runAsNonRoot without knowing the name.
RUN groupadd --system --gid 10001 coursewright \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin coursewright
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
# The root filesystem may be read-only (the Helm chart makes it so): caches and the development data
# directory go to /tmp, which the chart mounts as an emptyDir.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    DATA_DIR=/tmp/coursewright \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKER_METRICS_PORT=9100
USER 10001:10001
# 8000: the web app (pages, /health/*, /metrics); 9100: a standalone worker's Prometheus metrics.
EXPOSE 8000 9100
# No HEALTHCHECK: the same image runs the worker, which serves no /health; Kubernetes probes each role
# separately (helm/coursewright).
ENTRYPOINT ["coursewright"]
CMD ["serve"]
