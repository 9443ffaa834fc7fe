"""Ours plus an audit row for every request, written by the service's default writer: a child process
(``AuditProcessWriter``). The server process pays for handing rows over; the writer process (another
core) for normalising, hashing and COPY. See ``_audited``."""
from _audited import audited_app

app = audited_app(process=True)
