"""Alloy's configuration language as typed Python, the log pipeline written in it, and its checks.

No Alloy parser exists on PyPI or Debian, so the language is modelled here
(``syntax``), rendered deterministically, parsed back (``parse``) and checked
(``check``): every component reference resolves, and no high-cardinality log
field becomes a Loki stream label. ``pipeline`` holds the bundle's pipeline and
the stream-label set every LogQL selector is checked against.
"""
