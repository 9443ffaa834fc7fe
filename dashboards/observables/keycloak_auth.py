"""Keycloak's logins, tokens and HTTP service (stock Keycloak 26 metrics, management port)."""

from __future__ import annotations

from ..catalogs import keycloak as kc
from ..config import Config, DsType
from ..queries import TOTAL, rule
from ..queries import keycloak as q
from ..stack.prometheus.rules import Alert, Case, Fired, series
from ..stack.prometheus.slo import number, percent
from . import model as o
from .model import Diagnosis, Observable, Query, Runbook, Thresholds

PROM = DsType.PROMETHEUS
KEYCLOAK = "keycloak"
FILE = "keycloak-alerts"
LAZY = " Lazy family: shows 0 until the first event."
LAZY_ALERT = (" keycloak_user_events_total appears only after the first event and only with "
              "KC_EVENT_METRICS_USER_ENABLED=true (Keycloak >= 26.2): while it is absent this alert stays silent.")
EVENTS = "User events are demand; the failed-login alerts watch what goes wrong."


def _labels(cfg: Config) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    labels = {"job": cfg.keycloak_job, "instance": cfg.prometheus.keycloak_target}
    login = {**labels, "client_id": "authors-app", "event": "login", "realm": "demo"}
    return labels, login, {**login, "error": "invalid_user_credentials"}


def failed_logins(cfg: Config) -> Observable:
    a, p = cfg.alerting, cfg.panels
    events = kc.family("keycloak_user_events_total")
    _, login, bad = _labels(cfg)
    realm = {"job": cfg.keycloak_job, "realm": "demo"}
    failed = q.login_failures(cfg, rule(cfg.keycloak_selector, by=("job", "realm")))
    return Observable(
        name="keycloak.failed_logins", title="Failed logins by error and realm",
        description="event=login with a non-empty error (invalid_user_credentials, user_not_found, ...)." + LAZY,
        unit="ops", datasource=PROM, queries=(Query(q.login_failures(cfg), legend="{{realm}} {{error}}"),),
        style=o.timeseries(),
        thresholds=Thresholds.of("green", (p.keycloak_failed_logins_per_second_warning, "orange"),
                                 (p.keycloak_failed_logins_per_second_critical, "red")),
        alerts=(Alert(
            name="KeycloakFailedLoginSpike",
            expr=f"{failed} * 60 > {number(a.keycloak_failed_logins_per_minute)}",
            for_="5m",
            severity="warning",
            summary="Failed logins in realm {{ $labels.realm }}: {{ $value | humanize }}/min",
            description=(f"{{{{ $value | humanize }}}} failed logins/min in realm {{{{ $labels.realm }}}} over the "
                         f"last 5m (threshold {a.keycloak_failed_logins_per_minute:g}/min).{LAZY_ALERT}"),
        ),),
        cases=(
            Case("KeycloakFailedLoginSpike", "30 failed logins/min",
                 (series(events, login, "0+60x20"), series(events, bad, "0+30x20")), "15m",
                 (Fired({**realm, "severity": "warning"}, "30"),)),
            Case("KeycloakFailedLoginSpike", "6 failed logins/min",
                 (series(events, login, "0+60x20"), series(events, bad, "0+6x20")), "15m"),
            Case("KeycloakFailedLoginSpike", "no login event yet: the lazy family is absent",
                 (series("up", _labels(cfg)[0], "1x20"),), "15m"),
        ),
        runbook=Runbook(
            meaning="Many logins fail in a realm: password guessing, user enumeration, or a broken client.",
            impact="Accounts may be under attack; real users may be locked out by brute-force protection.",
            diagnosis=(Diagnosis("which error dominates", q.login_failures(cfg, rule(
                cfg.keycloak_selector, by=("realm", "error")))),),
            mitigation=("invalid_user_credentials means password guessing, user_not_found user enumeration: "
                        "check Keycloak's brute-force detection and the source IPs in its event log."),
        ),
        feature=KEYCLOAK, rule_file=FILE,
    )


def failure_ratio(cfg: Config) -> Observable:
    a, p = cfg.alerting, cfg.panels
    events = kc.family("keycloak_user_events_total")
    _, login, bad = _labels(cfg)
    realm = {"job": cfg.keycloak_job, "realm": "demo"}
    scope = rule(cfg.keycloak_selector, by=("job", "realm"))
    logins = q.login_attempts(cfg, scope)
    return Observable(
        name="keycloak.failure_ratio", title="Login failure ratio",
        description=("Failed / all logins over the time range. Empty without logins: a ratio of nothing is "
                     "undefined."),
        unit="percentunit", datasource=PROM, queries=(Query(q.login_failure_ratio(cfg, TOTAL), instant=True),),
        style=o.stat(),
        thresholds=Thresholds.of("green", (p.keycloak_login_failure_ratio_warning, "orange"),
                                 (p.keycloak_login_failure_ratio_critical, "red")),
        alerts=(Alert(
            name="KeycloakFailedLoginRatioHigh",
            expr=(f"{q.login_failure_ratio(cfg, scope)} > {number(a.keycloak_failed_login_ratio)}\n"
                  f"and {q.login_attempts(cfg, scope, count=True)} >= {a.keycloak_min_logins}"),
            for_="10m",
            severity="warning",
            summary="{{ $value | humanizePercentage }} of logins fail in realm {{ $labels.realm }}",
            description=(f"{{{{ $value | humanizePercentage }}}} of login attempts in realm {{{{ $labels.realm }}}} "
                         f"failed over the last 5m (threshold {percent(a.keycloak_failed_login_ratio)}, counted "
                         f"only with at least {a.keycloak_min_logins} attempts in 5m).{LAZY_ALERT}"),
        ),),
        cases=(
            Case("KeycloakFailedLoginRatioHigh", "75% of logins fail",
                 (series(events, login, "0+10x20"), series(events, bad, "0+30x20")), "15m",
                 (Fired({**realm, "severity": "warning"}, "75%"),)),
            Case("KeycloakFailedLoginRatioHigh", "10% of logins fail",
                 (series(events, login, "0+90x20"), series(events, bad, "0+10x20")), "15m"),
            Case("KeycloakFailedLoginRatioHigh", "2 of 3 logins/min fail (below the minimum attempts)",
                 (series(events, login, "0+1x20"), series(events, bad, "0+2x20")), "15m"),
        ),
        runbook=Runbook(
            meaning="Most login attempts in a realm fail.",
            impact="If everybody fails, nobody can log in; otherwise it is an attack on the realm.",
            diagnosis=(Diagnosis("attempts per realm", logins),
                       Diagnosis("failures by error", q.login_failures(cfg, rule(
                           cfg.keycloak_selector, by=("realm", "error"))))),
            mitigation=("Everybody failing at once after a change points at the realm (an identity provider, a "
                        "required action, a client secret): roll it back. Otherwise treat it as an attack."),
        ),
        feature=KEYCLOAK, rule_file=FILE,
    )


def observables(cfg: Config) -> list[Observable]:
    slo, p = cfg.slo, cfg.panels
    pct = f"p{round(slo.latency_quantile * 100)}"

    def kc_obs(*args: object, **kwargs: object) -> Observable:
        return Observable(*args, feature=KEYCLOAK, **kwargs)  # type: ignore[arg-type]

    http = "Keycloak's HTTP service has no objective of its own here; its failures show in the app's auth panels."
    return [
        kc_obs("keycloak.logins", "Successful logins by realm", "event=login with an empty error, per second." + LAZY,
               "ops", PROM, (Query(q.logins(cfg), legend="{{realm}}"),), o.timeseries(), no_alert=EVENTS),
        failed_logins(cfg),
        failure_ratio(cfg),
        kc_obs("keycloak.token_events", "Token, refresh and logout events",
               "Code-to-token exchanges, refreshes, client logins and logouts per second." + LAZY, "ops", PROM,
               (Query(q.token_events(cfg), legend="{{event}}"),), o.timeseries(), no_alert=EVENTS),
        kc_obs("keycloak.token_errors", "Token event errors",
               "Failed token exchanges and refreshes, by event and error." + LAZY, "ops", PROM,
               (Query(q.token_event_errors(cfg), legend="{{event}} {{error}}"),), o.timeseries(),
               no_alert="Failed refreshes are clients' expired sessions; the app counts the tokens it refuses."),
        kc_obs("keycloak.password_validations", "Password validations by outcome",
               "Password hash checks: valid, invalid or error (26.1+)." + LAZY, "ops", PROM,
               (Query(q.password_validations(cfg), legend="{{outcome}}"),),
               o.timeseries(colors={"valid": "green", "invalid": "orange", "error": "red"}),
               no_alert="Invalid passwords are the failed logins the login alerts watch."),
        kc_obs("keycloak.http_by_outcome", "Request rate by outcome",
               "Requests per second by outcome class (SUCCESS, CLIENT_ERROR, ...).", "reqps", PROM,
               (Query(q.http_rate_by_outcome(cfg), legend="{{outcome}}"),),
               o.timeseries(stack=True, colors={"SUCCESS": "green", "REDIRECTION": "blue", "CLIENT_ERROR": "orange",
                                                "SERVER_ERROR": "red"}), no_alert=http),
        kc_obs("keycloak.http_5xx", "5xx by URI", "SERVER_ERROR responses per second by URI template." + LAZY,
               "reqps", PROM, (Query(q.http_5xx_by_uri(cfg), legend="{{uri}}"),), o.timeseries(),
               Thresholds.of("green", (p.keycloak_5xx_per_second, "red")), no_alert=http),
        kc_obs("keycloak.active_requests", "Active requests now", "Requests Keycloak is serving right now.", "short",
               PROM, (Query(q.active_requests(cfg)),), o.stat(), no_alert=http),
        kc_obs("keycloak.within_slo", f"Faster than {slo.latency_p95_seconds} s",
               f"Share of requests under the {slo.latency_p95_seconds} s bound over the time range; needs that "
               "bound in --http-metrics-slos.", "percentunit", PROM,
               (Query(q.http_within_slo(cfg, TOTAL), instant=True),), o.stat(),
               Thresholds.of("red", (slo.latency_quantile, "green")), no_alert=http),
        kc_obs("keycloak.latency_by_uri", "Average latency by URI", "Mean request time per URI template (sum / count).",
               "s", PROM, (Query(q.http_avg_latency_by_uri(cfg), legend="{{uri}}"),), o.timeseries(),
               no_alert=http),
        kc_obs("keycloak.latency", f"Latency {pct}",
               "From the SLO buckets only (0.1/0.25/0.5/1 s): coarse, but exact at the bounds.", "s", PROM,
               (Query(q.http_quantile(cfg), legend=pct),), o.timeseries(),
               Thresholds.of("green", (slo.latency_p95_seconds, "red")), no_alert=http),
    ]
