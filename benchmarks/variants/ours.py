"""Ours: metrics + /metrics + correlation ids + a JSON access line, one call."""
from _base import create_app, devnull_stream

from fastapi_lookout import instrument
from fastapi_lookout.logging import configure_logging

app = create_app()
instrument(app, configure_logs=False)
configure_logging(stream=devnull_stream())
