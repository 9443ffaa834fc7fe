# The reference service. Build: docker build -t fastapi-observability-bundle:0.1.0 .
# Runtime only (no test extras), as a non-root user, JSON logs on stdout for Alloy.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_CONSOLE_FORMAT=json \
    LOG_ERROR_FILE=/app/var/errors.log \
    AUDIT_SPOOL_PATH=/app/var/audit-spool.jsonl \
    DEV_ISSUER_KEY_PATH=/app/var/dev-issuer-key.pem

# The library with what the reference service runs on (the `reference` extra); the service itself
# is not installed: it runs from /app, as a user's own service would beside the library.
COPY pyproject.toml README.md /src/
COPY fastapi_lookout /src/fastapi_lookout
COPY dashboards /src/dashboards
RUN pip install '/src[reference]' && rm -rf /src

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app/var \
    && chown -R app:app /app
WORKDIR /app
COPY --chown=root:root app /app/app
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status != 200)"]

# With PROMETHEUS_MULTIPROC_DIR set (several workers), metric files of a previous run are stale:
# empty the directory before uvicorn starts. Without it, this is a plain exec.
ENTRYPOINT ["/bin/sh", "-c", "if [ -n \"$PROMETHEUS_MULTIPROC_DIR\" ]; then mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && find \"$PROMETHEUS_MULTIPROC_DIR\" -mindepth 1 -delete; fi; exec \"$@\"", "--"]
# The launcher: uvicorn with the request-line, header, timeout, connection and WebSocket size limits.
CMD ["python", "-m", "app.serve", "--host", "0.0.0.0", "--port", "8000"]
