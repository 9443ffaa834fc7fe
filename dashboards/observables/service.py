"""WebSocket traffic, and the service's protection: rate limits and bearer-token checks."""

from __future__ import annotations

from ..config import Config, DsType
from ..queries import fastapi as q
from ..queries import rule
from ..stack.prometheus.rules import Alert, Case, Fired, series
from ..stack.prometheus.slo import number
from . import model as o
from .model import Diagnosis, Observable, Query, Runbook

PROM = DsType.PROMETHEUS
WS_TRAFFIC = "Message traffic is demand, not health; failures show as rejected connections and error frames."



def websocket(cfg: Config) -> list[Observable]:
    pct = f"p{round(cfg.slo.latency_quantile * 100)}"
    ws = "websocket"
    return [
        Observable("ws.open", "Open connections now", "WebSocket connections open right now.", "short", PROM,
                   (Query(q.ws_active(cfg)),), o.stat(), no_alert=WS_TRAFFIC, feature=ws),
        Observable("ws.connections", "Connection attempts by status",
                   "Accepted vs rejected (bad token, connection limit) per second.", "ops", PROM,
                   (Query(q.ws_connections_by_status(cfg), legend="{{status}}"),),
                   o.timeseries(colors={"accepted": "green", "rejected_auth": "red", "rejected_limit": "orange"}),
                   no_alert="A rejected connection's bad token is one of the refused tokens the auth alert "
                            "counts.", feature=ws),
        Observable("ws.messages", "Messages", "Messages received from and sent to clients per second.", "ops",
                   PROM, (Query(q.ws_messages_received(cfg), legend="received"),
                          Query(q.ws_messages_sent(cfg), legend="sent")), o.timeseries(),
                   no_alert=WS_TRAFFIC, feature=ws),
        Observable("ws.processing", f"Message processing {pct} by package",
                   "Time to handle one message per package id ('unknown' for ids the service does not serve).", "s",
                   PROM, (Query(q.ws_processing_by_pkg(cfg), legend="{{pkg_id}}", exemplars=True),),
                   o.timeseries(), no_alert="No objective is set for WebSocket packages (the SLOs cover HTTP).",
                   feature=ws),
    ]


def rate_limits(cfg: Config) -> Observable:
    a = cfg.alerting
    labels = o.app_labels(cfg)
    name = "rate_limit_hits_total"
    warn = {"job": cfg.app_job, "severity": "warning"}
    return Observable(
        name="protection.rate_limit_hits",
        title="Rate-limit hits by type",
        description="Requests refused with 429, by the limit that refused them.",
        unit="reqps", datasource=PROM, queries=(Query(q.rate_limit_hits(cfg), legend="{{limit_type}}"),),
        style=o.timeseries(),
        alerts=(Alert(
            name="AppRateLimitSpike",
            expr=(f"{q.rate_limit_hits(cfg, rule(cfg.app_selector, by=('job', 'limit_type')))} * 60 "
                  f"> {number(a.rate_limit_hits_per_minute)}"),
            for_="10m",
            severity="warning",
            summary="{{ $labels.job }} refuses requests on its {{ $labels.limit_type }} rate limit",
            description=(f"{{{{ $labels.job }}}} refused {{{{ $value | humanize }}}} requests/min on the "
                         f"{{{{ $labels.limit_type }}}} limit over the last 5m (threshold "
                         f"{a.rate_limit_hits_per_minute:g}/min)."),
        ),),
        cases=(
            Case("AppRateLimitSpike", "120 refusals/min on the user limit",
                 (series(name, {**labels, "limit_type": "user"}, "0+120x20"),
                  series(name, {**labels, "limit_type": "ip"}, "0x20")), "15m",
                 (Fired({**warn, "limit_type": "user"}, "120"),)),
            Case("AppRateLimitSpike", "an occasional refusal",
                 (series(name, {**labels, "limit_type": "user"}, "0+6x20"),), "15m"),
        ),
        runbook=Runbook(
            meaning="Clients keep hitting a rate limit: their requests are refused with 429.",
            impact="Refused clients are degraded; if they are real users, the limits are too low for the load.",
            diagnosis=(Diagnosis("who hits the limit (user_id, client_ip)",
                                 f'{{service="{cfg.app_service}"}} |= "rate limit exceeded" | json', "logql"),),
            mitigation=("A single client looping is a client bug or abuse: contact or block it. Many clients "
                        "mean the limits are too low for real load: raise RATE_LIMIT_*."),
        ),
        feature="rate_limit", rule_file="app-alerts",
    )


def auth_attempts(cfg: Config) -> Observable:
    a = cfg.alerting
    labels = o.app_labels(cfg)
    name = "auth_attempts_total"
    warn = {"job": cfg.app_job, "severity": "warning"}
    failures = q.auth_attempts(cfg, rule(cfg.app_selector, by=("job",)), 'status!="success"')
    idp = "Keycloak's JWKS" if cfg.features.keycloak else "the identity provider's signing keys (JWKS)"
    return Observable(
        name="protection.auth_attempts",
        title="Auth attempts by status",
        description="Bearer-token checks: success, or why the token was refused.",
        unit="reqps", datasource=PROM, queries=(Query(q.auth_attempts(cfg), legend="{{status}}"),),
        style=o.timeseries(colors={"success": "green"}),
        alerts=(Alert(
            name="AppAuthFailuresHigh",
            expr=f"{failures} * 60 > {number(a.auth_failures_per_minute)}",
            for_="10m",
            severity="warning",
            summary="{{ $labels.job }} rejects {{ $value | humanize }} bearer tokens per minute",
            description=(f"{{{{ $value | humanize }}}} bearer-token checks/min failed on {{{{ $labels.job }}}} over "
                         f"the last 5m (threshold {a.auth_failures_per_minute:g}/min): missing, expired, forged "
                         "tokens or forbidden roles."),
        ),),
        cases=(
            Case("AppAuthFailuresHigh", "60 expired tokens per minute",
                 (series(name, {**labels, "status": "success"}, "0+600x20"),
                  series(name, {**labels, "status": "expired"}, "0+60x20")), "15m", (Fired(warn, "60"),)),
            Case("AppAuthFailuresHigh", "a few failures among many successes",
                 (series(name, {**labels, "status": "success"}, "0+600x20"),
                  series(name, {**labels, "status": "missing"}, "0+6x20")), "15m"),
        ),
        runbook=Runbook(
            meaning="Many bearer tokens are refused: missing, expired, forged, or without the role.",
            impact="Clients are locked out, or someone is probing the API with stolen or forged tokens.",
            diagnosis=(Diagnosis("which reason dominates", q.auth_attempts(cfg, rule(
                cfg.app_selector, by=("status",)), 'status!="success"')),),
            mitigation=("`expired` from one client is a refresh bug on its side; `unknown_key` or "
                        f"`jwks_unavailable` point at {idp}; `invalid_signature` from many IPs is an "
                        "attack: block the sources."),
        ),
        feature="auth", rule_file="app-alerts",
    )


def observables(cfg: Config) -> list[Observable]:
    return [*websocket(cfg), rate_limits(cfg), auth_attempts(cfg)]
