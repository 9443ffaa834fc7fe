"""Every knob of the reference service, read once from the environment.

Defaults are chosen so that ``uvicorn app.main:app`` runs with no outside
service at all: SQLite file database, a local development token issuer, logs
on stdout. The README's configuration table is generated from this class's
field descriptions, so a knob added here is documented there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from fastapi_lookout.audit import defaults as writer
from fastapi_lookout.audit.spool import default_spool_path

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    app_name: str = Field("fastapi-app", description="Service name in logs and the `service` log field.")
    app_version: str = Field("0.1.0", description="Version reported by `app_info`.")
    environment: str = Field("development", description="Deployment environment (`environment` log field).")

    # logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Minimum level written."
    )
    log_console_format: Literal["json", "human"] = Field(
        "json", description="`json` for machines (Alloy/Loki), `human` for a terminal."
    )
    log_error_file: str | None = Field(
        str(VAR_DIR / "errors.log"),
        description="File that always receives ERROR records as JSON (empty: disabled).",
    )
    loki_url: str | None = Field(
        None, description="Push logs directly to this Loki (`http://loki:3100`); queued, never blocks."
    )

    # database and audit
    database_url: str = Field(
        f"sqlite+aiosqlite:///{VAR_DIR / 'app.db'}",
        description="SQLAlchemy async URL; `postgresql+asyncpg://...` for PostgreSQL.",
    )
    database_migrate_on_start: bool = Field(
        True, description="Run Alembic migrations at start (disable when a deploy step runs them)."
    )
    audit_enabled: bool = Field(True, description="Write one `user_actions` row per /api request and WS message.")
    audit_writer_process: bool = Field(
        True, description="Write audit rows from a child process (requests only hand rows over); false: a task in "
        "the app's event loop."
    )
    audit_queue_max_size: int = Field(
        writer.QUEUE_MAX_SIZE, ge=1, description="Rows held in memory before new ones are dropped."
    )
    audit_batch_size: int = Field(writer.BATCH_SIZE, ge=1, description="Rows per INSERT batch.")
    audit_batch_timeout_seconds: float = Field(
        writer.BATCH_TIMEOUT_SECONDS, gt=0, description="Longest wait before a partial batch is written."
    )
    audit_retry_max_seconds: float = Field(
        writer.RETRY_MAX_SECONDS, gt=0, description="Cap of the retry backoff on database errors."
    )
    audit_shutdown_timeout_seconds: float = Field(
        writer.SHUTDOWN_TIMEOUT_SECONDS,
        gt=0,
        description="How long shutdown keeps retrying the database before spooling to disk.",
    )
    audit_spool_path: str | None = Field(
        None,
        description="Rows the database could not take by shutdown are kept here, bound to that database, and "
        "replayed at a start connected to it only. Default: `audit-spool-<APP_NAME>-<hash of the database "
        "location>.jsonl` beside a SQLite database, else in `var/`.",
    )
    audit_request_data_max_bytes: int = Field(4096, ge=0, description="Cap of the redacted `request_data` JSON.")
    audit_hmac_key: SecretStr | None = Field(
        None,
        description="Key of the `user_actions` hash chain (HMAC-SHA-256); unset: plain SHA-256, which anyone able "
        "to write the table can recompute. Same key for the app, the migrations and `scripts/audit.py`.",
    )
    audit_verify_interval_seconds: float = Field(
        60.0, ge=0, description="Seconds between incremental checks of the audit hash chain (`audit_chain_*` "
        "metrics); 0: off."
    )
    audit_retention_days: int = Field(
        0, ge=0, description="Delete audit rows older than this, hourly, leaving a signed checkpoint (PostgreSQL: "
        "as role `audit_retention`); 0: keep for ever."
    )

    # auth
    auth_jwks_url: str | None = Field(
        None, description="Keycloak JWKS URL; unset: trust the local development issuer."
    )
    auth_issuer: str | None = Field(
        None, description="Required `iss` (Keycloak realm URL); unset with the dev issuer."
    )
    auth_audience: str | None = Field(None, description="Required `aud` when set.")
    auth_jwks_cache_seconds: float = Field(300.0, gt=0, description="How long fetched signing keys are trusted.")
    auth_jwks_min_refresh_seconds: float = Field(
        10.0, ge=0, description="Unknown `kid`s trigger at most one JWKS refresh per this interval."
    )
    auth_leeway_seconds: int = Field(
        30, ge=0, le=300, description="Clock skew tolerated on a token's `exp`/`nbf`/`iat`: a token is accepted "
        "(and a WebSocket kept open) until this long after it expired."
    )
    dev_issuer_key_path: str = Field(
        str(VAR_DIR / "dev-issuer-key.pem"), description="Private key of the local development issuer."
    )

    # metrics
    metrics_token: str | None = Field(
        None, description="When set, `/metrics` requires `Authorization: Bearer <token>`."
    )

    # limits
    rate_limit_per_minute: int = Field(120, ge=1, description="Requests per user (or client IP) per sliding minute.")
    rate_limit_burst: int = Field(20, ge=1, description="Requests per user (or client IP) per sliding second.")
    rate_limit_ip_per_minute: int = Field(
        600, ge=1, description="Requests per client IP per sliding minute, checked before authentication."
    )
    rate_limit_ip_burst: int = Field(100, ge=1, description="Requests per client IP per sliding second.")
    max_body_bytes: int = Field(64 * 1024, ge=1, description="Larger request bodies get 413.")
    ws_max_connections_per_user: int = Field(5, ge=1, description="Concurrent WebSocket connections per user.")
    ws_messages_per_minute: int = Field(60, ge=1, description="WebSocket messages per connection per minute.")
    ws_max_message_bytes: int = Field(
        16 * 1024, ge=1, description="Larger WebSocket messages (in bytes, UTF-8 for text) are refused: by the "
        "server while receiving (close 1009, `python -m app.serve`), else with a 413 reply."
    )
    ws_max_refused_frames: int = Field(
        10, ge=1, description="Frames a WebSocket may have refused (malformed, unknown package, too large, over the "
        "message limit) before it is closed with 1008 (policy violation)."
    )

    # the server (`python -m app.serve`: Makefile, Dockerfile, tests)
    server_max_request_line_bytes: int = Field(
        8 * 1024, ge=64, description="Longer request lines (method, path and query, version) get 414."
    )
    server_max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="Larger request heads (request line and all headers) get 431."
    )
    server_header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request head must arrive within this long of its first byte (else 408); a new "
        "connection that sends nothing is closed after it."
    )
    server_keepalive_timeout_seconds: float = Field(
        5.0, gt=0, description="Idle keep-alive connections are closed after this long."
    )
    server_max_connections: int = Field(
        1000, ge=1, description="Open connections per worker process, WebSockets included; more get 503 and are "
        "closed."
    )

    @model_validator(mode="after")
    def _spool_beside_the_data(self) -> Settings:
        """One spool per service and database by default, where the service keeps its data."""
        if self.audit_spool_path is None:
            self.audit_spool_path = str(default_spool_path(data_directory(self.database_url), self.app_name,
                                                           self.database_url))
        return self

    @field_validator("audit_hmac_key", mode="before")
    @classmethod
    def _empty_key_is_no_key(cls, value: object) -> object:
        return None if value == "" else value

    def audit_key(self) -> str | None:
        return self.audit_hmac_key.get_secret_value() if self.audit_hmac_key else None


def data_directory(database_url: str) -> Path:
    """A SQLite database's directory; ``var/`` for a server database (or SQLite in memory)."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        return Path(database).parent
    return VAR_DIR


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def markdown_table() -> str:
    """The README's configuration table, so documentation cannot drift from the code."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)
