"""Ours: metrics + /metrics + correlation ids + a JSON access line, one call."""
from _base import create_app, devnull_stream

from app.observability import instrument
from app.observability.logging import configure_logging

app = create_app()
instrument(app, configure_logs=False)
configure_logging(stream=devnull_stream())
