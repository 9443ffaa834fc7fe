"""Ours plus an audit row for every request, written by the batching ``AuditWriter`` task in the server
process (``AUDIT_WRITER_PROCESS=false``): its CPU is paid on the event loop's core. See ``_audited``."""
from _audited import audited_app

app = audited_app(process=False)
