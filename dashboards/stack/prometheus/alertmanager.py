"""prometheus/alertmanager.yml: route by severity, group by alert and job, criticals inhibit warnings.

Receivers are webhooks. By default their URLs come from the config object
(``alerting.pager_webhook_url``/``ticket_webhook_url``; override them with
``--config``), which every Alertmanager version and ``amtool check-config``
accept. To keep a secret URL out of the repository, set
``alerting.webhook_url_dir``: the receivers then read ``<dir>/pager`` and
``<dir>/ticket`` (``url_file``, Alertmanager >= 0.26, e.g. docker secrets).
"""

from __future__ import annotations

from typing import Any, Final

from ...config import Config
from .rules import SEVERITIES

PAGER: Final = "pager"
TICKET: Final = "ticket"
RECEIVER_OF: Final = {"critical": PAGER, "warning": TICKET}
"""Where each severity goes; every severity a rule may carry has a route (checked by the build)."""
GROUP_BY: Final = ("alertname", "job")


def _receiver(cfg: Config, name: str, url: str) -> dict[str, Any]:
    directory = cfg.alerting.webhook_url_dir
    hook: dict[str, Any] = {"url_file": f"{directory.rstrip('/')}/{name}"} if directory else {"url": url}
    hook["send_resolved"] = True
    return {"name": name, "webhook_configs": [hook]}


def alertmanager_config(cfg: Config) -> dict[str, Any]:
    a = cfg.alerting
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": TICKET,
            "group_by": list(GROUP_BY),
            "group_wait": a.group_wait,
            "group_interval": a.group_interval,
            "repeat_interval": a.repeat_interval,
            "routes": [{"receiver": RECEIVER_OF[s], "matchers": [f'severity="{s}"']} for s in SEVERITIES],
        },
        "inhibit_rules": [{
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": list(GROUP_BY),
        }],
        "receivers": [_receiver(cfg, PAGER, a.pager_webhook_url), _receiver(cfg, TICKET, a.ticket_webhook_url)],
    }


def problems(cfg: Config) -> list[str]:
    a = cfg.alerting
    out = [f"severity {s!r} has no Alertmanager route" for s in SEVERITIES if s not in RECEIVER_OF]
    if not a.webhook_url_dir:
        urls = {"pager_webhook_url": a.pager_webhook_url, "ticket_webhook_url": a.ticket_webhook_url}
        out += [f"alerting.{key} must be an http(s) URL, got {url!r}"
                for key, url in urls.items() if not url.startswith(("http://", "https://"))]
    return out
