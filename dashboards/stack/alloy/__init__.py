"""Alloy's configuration language as typed Python, and the log pipeline written in it.

No Alloy parser exists on PyPI or Debian, so the language is modelled here
(``syntax``) and rendered deterministically; the build parses the rendered text
back and checks it (``dashboards.validate.alloy_parse``, ``dashboards.validate.alloy``):
every component reference resolves, and no high-cardinality log field becomes
a Loki stream label. ``pipeline`` holds the bundle's pipeline.
"""
