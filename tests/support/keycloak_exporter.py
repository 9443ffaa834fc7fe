"""A real HTTP server standing in for Keycloak 26's management endpoint (``:9000/metrics``), as of the pinned 26.8.

It serves every family of ``dashboards/catalogs/keycloak.py`` (so the catalog
and the stand-in cannot drift: a family added there without a model here
fails at start) with realistic label values, in the two formats Keycloak
answers with (see shared/reference/keycloak.md):

- text format 0.0.4 when the ``Accept`` header contains ``text/plain`` (as
  Prometheus's does), written the way Micrometer/simpleclient writes it:
  ``# HELP`` before ``# TYPE``, counter families named with ``_total``, a
  trailing comma after the last label, empty label values written, Java
  doubles (``1.0``, ``1.476395008E9``), no ``# EOF``;
- OpenMetrics otherwise (``# TYPE`` first, counter families without
  ``_total``, ``# EOF`` at the end).

Successful user events are written with ``error=""``: Keycloak 26 writes empty tags by default
(``event-metrics-user-allow-empty-tags``, keycloak#45582/#48011); the guide's sample leaves the label out,
which Prometheus reads the same (an empty label is a missing one).

Every scrape is one tick of a running Keycloak: counters (chosen by ``# TYPE``,
never by suffix) grow, so ``rate()`` is non-zero; gauges move up and down, the
Agroal ``*_count`` gauges included. Lazy families (user events, password
validations, SERVER_ERROR series) are absent until the first event, which
happens at the second scrape; with ``traffic=False`` (an idle Keycloak) no
event ever happens, so they never appear and request counters stand still.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from dashboards.catalogs import keycloak as catalog
from tests.support.binaries import free_port

TEXT_004 = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
SLO_BOUNDS = (0.1, 0.25, 0.5, 1.0)
"""``--http-metrics-slos=100,250,500,1000``: the ``le`` bounds of ``http_server_requests_seconds``."""
NODE = "keycloak-0-12345"
REALMS = ("master", "demo")


def java_double(value: float) -> str:
    """``Double.toString`` as simpleclient writes samples: ``1.0``, ``0.0013``, ``1.476395008E9``, ``2.0E-4``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "." in text else f"{text}.0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{len(digits) - 1 + exponent}"


# --- the model -----------------------------------------------------------------------------------------
Labels = tuple[tuple[str, str], ...]


def _labels(**values: str) -> Labels:
    """Keycloak writes labels in alphabetical order."""
    return tuple(sorted(values.items()))


@dataclass(frozen=True, slots=True)
class Counter:
    labels: Labels
    start: float
    per_scrape: float
    """0 for counters that really stand still (``jvm_info_total`` is always 1)."""
    lazy: bool = False
    background: bool = False
    """Grows even on an idle Keycloak (GC, pool housekeeping); user traffic does not."""


@dataclass(frozen=True, slots=True)
class Gauge:
    labels: Labels
    values: tuple[float, ...]
    """Cycled through, one per scrape: gauges go up and down."""
    per_scrape: float = 0.0
    """Added once per scrape (``process_uptime_seconds``)."""
    lazy: bool = False
    """The ``_max`` gauge of a lazy timer appears with it."""


@dataclass(frozen=True, slots=True)
class Timer:
    """A histogram (with ``SLO_BOUNDS``) or summary series: count, sum and (histograms) cumulative buckets."""

    labels: Labels
    start: float
    per_scrape: float
    mean_seconds: float
    within: tuple[float, ...] = (0.9, 0.97, 0.995, 1.0)
    """Share of requests at or under each of ``SLO_BOUNDS``."""
    lazy: bool = False
    background: bool = False


Series = Counter | Gauge | Timer


@dataclass(frozen=True, slots=True)
class FamilyModel:
    help: str
    series: tuple[Series, ...]


def _pool(*values: float) -> tuple[Gauge, ...]:
    return (Gauge(_labels(datasource="default"), values),)


def _pool_counter(start: float, per_scrape: float) -> tuple[Counter, ...]:
    return (Counter(_labels(datasource="default"), start, per_scrape, background=True),)


def _http() -> tuple[Timer, ...]:
    token, auth = "/realms/{realm}/protocol/{protocol}/token", "/realms/{realm}/protocol/{protocol}/auth"
    login = "/realms/{realm}/login-actions/authenticate"

    def t(method: str, outcome: str, status: str, uri: str, start: float, per: float, mean: float,
          within: tuple[float, ...] = (0.9, 0.97, 0.995, 1.0), lazy: bool = False, background: bool = False
          ) -> Timer:
        labels = _labels(method=method, outcome=outcome, status=status, uri=uri)
        return Timer(labels, start, per, mean, within, lazy=lazy, background=background)

    return (
        t("GET", "SUCCESS", "200", auth, 1560, 4, 0.0127),
        t("POST", "REDIRECTION", "302", login, 1532, 3, 0.086, within=(0.85, 0.99, 1.0, 1.0)),
        t("POST", "SUCCESS", "200", login, 46, 1, 0.0896, within=(0.67, 0.96, 1.0, 1.0)),
        t("POST", "SUCCESS", "200", token, 6611, 9, 0.0305, within=(0.99, 1.0, 1.0, 1.0)),
        t("POST", "CLIENT_ERROR", "400", token, 16, 1, 0.013, within=(1.0, 1.0, 1.0, 1.0)),
        t("POST", "CLIENT_ERROR", "401", token, 3, 1, 0.017, within=(1.0, 1.0, 1.0, 1.0)),
        t("GET", "SUCCESS", "200", "/realms/{realm}/protocol/{protocol}/certs", 75, 1, 0.0041),
        t("GET", "REDIRECTION", "302", "/realms/{realm}/protocol/{protocol}/logout", 402, 1, 0.0239),
        t("GET", "CLIENT_ERROR", "404", "NOT_FOUND", 5, 1, 0.002, within=(1.0, 1.0, 1.0, 1.0)),
        t("POST", "SERVER_ERROR", "500", "/admin/realms/{realm}/users", 0, 1, 0.131, lazy=True,
          within=(0.5, 1.0, 1.0, 1.0)),
        t("GET", "SUCCESS", "200", "/metrics", 240, 1, 0.0044, background=True, within=(1.0, 1.0, 1.0, 1.0)),
    )


def _user_events() -> tuple[Counter, ...]:
    def ev(client: str, error: str, event: str, realm: str, per: float) -> Counter:
        return Counter(_labels(client_id=client, error=error, event=event, realm=realm), 0, per, lazy=True)

    return (
        ev("my-app", "", "login", "demo", 3),
        ev("my-app", "invalid_user_credentials", "login", "demo", 1),
        ev("my-app", "user_not_found", "login", "demo", 1),
        ev("my-app", "", "code_to_token", "demo", 3),
        ev("my-app", "invalid_code", "code_to_token", "demo", 1),
        ev("my-app", "", "refresh_token", "demo", 8),
        ev("my-app", "invalid_token", "refresh_token", "demo", 1),
        ev("my-app", "", "logout", "demo", 1),
        ev("backend-service", "", "client_login", "demo", 2),
        ev("unknown", "client_not_found", "client_login", "master", 1),
        ev("security-admin-console", "", "login", "master", 1),
        ev("security-admin-console", "", "code_to_token", "master", 1),
    )


def _passwords() -> tuple[Counter, ...]:
    strength = "Argon2id-1.3[m=7168,t=5,p=1]"

    def pw(outcome: str, realm: str, per: float) -> Counter:
        return Counter(_labels(algorithm="argon2", hashing_strength=strength, outcome=outcome, realm=realm),
                       0, per, lazy=True)

    return (pw("valid", "demo", 3), pw("invalid", "demo", 1), pw("valid", "master", 1))


_CACHES = {  # cache: (entries, hits per scrape, misses per scrape)
    "realms": (412, 40, 1), "users": (957, 12, 2), "sessions": (118, 9, 1), "authenticationSessions": (3, 4, 1),
    "clientSessions": (96, 6, 1), "offlineSessions": (0, 1, 1), "loginFailures": (2, 1, 1), "keys": (6, 2, 1),
}


def _cache_labels(cache: str) -> Labels:
    return _labels(cache=cache, cache_manager="keycloak", node=NODE)


_MEMORY = (  # area, id, used, committed, max (-1: no limit)
    ("heap", "G1 Eden Space", 1.01711872e8, 2.01326592e8, -1.0),
    ("heap", "G1 Old Gen", 2.48512e8, 3.3554432e8, 1.476395008e9),
    ("heap", "G1 Survivor Space", 8388608.0, 8388608.0, -1.0),
    ("nonheap", "CodeHeap 'non-nmethods'", 1918336.0, 3932160.0, 5840896.0),
    ("nonheap", "CodeHeap 'non-profiled nmethods'", 2.0346624e7, 2.0381696e7, 1.22908672e8),
    ("nonheap", "CodeHeap 'profiled nmethods'", 4.4167168e7, 4.42368e7, 1.22908672e8),
    ("nonheap", "Compressed Class Space", 2.6219528e7, 2.7459584e7, 1.073741824e9),
    ("nonheap", "Metaspace", 1.88040632e8, 1.90185472e8, -1.0),
)
_GC = (  # action, cause, gc, pauses so far, per scrape, mean pause
    ("end of minor GC", "G1 Evacuation Pause", "G1 Young Generation", 184, 1, 0.00716),
    ("end of minor GC", "Metadata GC Threshold", "G1 Young Generation", 2, 1, 0.0155),
    ("end of major GC", "G1 Compaction Pause", "G1 Old Generation", 1, 1, 0.21),
)
_THREAD_STATES = {"blocked": 0, "new": 0, "runnable": 14, "terminated": 0, "timed-waiting": 21, "waiting": 28}


def _memory(column: int, wobble: float = 0.0) -> tuple[Gauge, ...]:
    """One series per pool (``column``: 2 used, 3 committed, 4 max); ``wobble`` makes it move."""
    out = []
    for row in _MEMORY:
        value = float(row[column])
        values = (value, value * (1 + wobble)) if wobble and value > 0 else (value,)
        out.append(Gauge(_labels(area=str(row[0]), id=str(row[1])), values))
    return tuple(out)


def _scalar(*values: float) -> tuple[Gauge, ...]:
    return (Gauge((), values),)


MODELS: Mapping[str, FamilyModel] = {
    "keycloak_user_events_total": FamilyModel("Keycloak user events", _user_events()),
    "keycloak_credentials_password_hashing_validations_total": FamilyModel("Password validations", _passwords()),
    "http_server_requests_seconds": FamilyModel("", _http()),
    "http_server_requests_seconds_max": FamilyModel(
        "", tuple(Gauge(t.labels, (t.mean_seconds * 3, t.mean_seconds * 2), lazy=t.lazy) for t in _http())),
    "http_server_active_requests": FamilyModel("", _scalar(2.0, 1.0, 3.0)),
    "jvm_info_total": FamilyModel("JVM version info", (
        Counter(_labels(runtime="OpenJDK Runtime Environment", vendor="Red Hat, Inc.", version="21.0.8+9-LTS"),
                1.0, 0.0),)),
    "jvm_memory_used_bytes": FamilyModel("The amount of used memory", _memory(2, wobble=0.05)),
    "jvm_memory_committed_bytes": FamilyModel(
        "The amount of memory in bytes that is committed for the Java virtual machine to use", _memory(3)),
    "jvm_memory_max_bytes": FamilyModel(
        "The maximum amount of memory in bytes that can be used for memory management", _memory(4)),
    "jvm_memory_usage_after_gc_percent": FamilyModel(
        "The percentage of long-lived heap pool used after the last GC event, in the range [0..1]",
        (Gauge(_labels(area="heap", pool="long-lived"), (0.152435302734375, 0.16)),)),
    "jvm_gc_pause_seconds": FamilyModel("Time spent in GC pause", tuple(
        Timer(_labels(action=a, cause=c, gc=g), n, per, mean, background=True) for a, c, g, n, per, mean in _GC)),
    "jvm_gc_pause_seconds_max": FamilyModel("Time spent in GC pause", tuple(
        Gauge(_labels(action=a, cause=c, gc=g), (mean * 1.7, 0.0)) for a, c, g, _, _, mean in _GC)),
    "jvm_gc_overhead": FamilyModel(
        "An approximation of the percent of CPU time used by GC activities over the last lookback period or since "
        "monitoring began, whichever is shorter, in the range [0..1]", _scalar(0.0013, 0.0021)),
    "jvm_threads_live_threads": FamilyModel(
        "The current number of live threads including both daemon and non-daemon threads", _scalar(63.0, 64.0)),
    "jvm_threads_daemon_threads": FamilyModel("The current number of live daemon threads", _scalar(26.0)),
    "jvm_threads_peak_threads": FamilyModel(
        "The peak live thread count since the Java virtual machine started or peak was reset", _scalar(71.0)),
    "jvm_threads_states_threads": FamilyModel("The current number of threads", tuple(
        Gauge(_labels(state=state), (n, n + 1 if n else n)) for state, n in _THREAD_STATES.items())),
    "jvm_classes_loaded_classes": FamilyModel(
        "The number of classes that are currently loaded in the Java virtual machine", _scalar(31425.0)),
    "process_cpu_usage": FamilyModel('The "recent cpu usage" for the Java Virtual Machine process',
                                     _scalar(0.0412, 0.0388, 0.051)),
    "system_cpu_usage": FamilyModel('The "recent cpu usage" of the system the application is running in',
                                    _scalar(0.1187, 0.1301)),
    "process_start_time_seconds": FamilyModel("Start time of the process since unix epoch.",
                                              _scalar(1.761724800123e9)),
    "process_uptime_seconds": FamilyModel("The uptime of the Java virtual machine",
                                          (Gauge((), (3600.512,), per_scrape=1.0),)),
    "process_files_open_files": FamilyModel("The open file descriptor count", _scalar(412.0, 415.0)),
    "system_load_average_1m": FamilyModel(
        "The sum of the number of runnable entities queued to available processors and the number of runnable "
        "entities running on the available processors averaged over a period of time", _scalar(0.42, 0.47)),
    "agroal_active_count": FamilyModel(
        "Number of active connections. These connections are in use and not available to be acquired.",
        _pool(1.0, 2.0, 1.0, 0.0)),
    "agroal_available_count": FamilyModel("Number of idle connections in the pool, available to be acquired.",
                                          _pool(9.0, 8.0, 9.0, 10.0)),
    "agroal_awaiting_count": FamilyModel("Approximate number of threads blocked, waiting to acquire a connection.",
                                         _pool(0.0, 1.0)),
    "agroal_max_used_count": FamilyModel("Maximum number of connections active simultaneously.", _pool(10.0)),
    "agroal_acquire_count_total": FamilyModel("Number of times an acquire operation succeeded.",
                                              _pool_counter(48211, 7)),
    "agroal_creation_count_total": FamilyModel("Number of created connections.", _pool_counter(10, 1)),
    "agroal_destroy_count_total": FamilyModel("Number of destroyed connections.", _pool_counter(0, 1)),
    "agroal_flush_count_total": FamilyModel(
        "Number of connections removed from the pool, not counting invalid / idle.", _pool_counter(0, 1)),
    "agroal_invalid_count_total": FamilyModel("Number of connections removed from the pool for being invalid.",
                                              _pool_counter(0, 1)),
    "agroal_leak_detection_count_total": FamilyModel(
        "Number of times a leak was detected. A single connection can be detected multiple times.",
        _pool_counter(0, 1)),
    "agroal_reap_count_total": FamilyModel("Number of connections removed from the pool for being idle.",
                                           _pool_counter(0, 1)),
    "agroal_blocking_time_average_milliseconds": FamilyModel(
        "Average time an application waited to acquire a connection.", _pool(0.0, 0.4)),
    "agroal_blocking_time_max_milliseconds": FamilyModel(
        "Maximum time an application waited to acquire a connection.", _pool(41.0)),
    "agroal_blocking_time_total_milliseconds": FamilyModel(
        "Total time applications waited to acquire a connection.", _pool(1877.0, 1881.0)),
    "vendor_statistics_approximate_entries": FamilyModel(
        "Approximate number of entries currently in the cache, including persisted and expired entries", tuple(
            Gauge(_cache_labels(cache), (entries, entries + 1)) for cache, (entries, _, _) in _CACHES.items())),
    "vendor_statistics_hit_times_seconds": FamilyModel("Hits histogram", tuple(
        Timer(_cache_labels(cache), hits * 200, hits, 1e-5) for cache, (_, hits, _) in _CACHES.items())),
    "vendor_statistics_miss_times_seconds": FamilyModel("Misses histogram", tuple(
        Timer(_cache_labels(cache), misses * 50, misses, 1.2e-5) for cache, (_, _, misses) in _CACHES.items())),
}


# --- rendering ---------------------------------------------------------------------------------------------
def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Iterable[tuple[str, str]], openmetrics: bool) -> str:
    pairs = [f'{k}="{_escape(v)}"' for k, v in labels]
    if not pairs:
        return ""
    return "{" + ",".join(pairs) + ("}" if openmetrics else ",}")


class Snapshot:
    """The values of one scrape: tick ``n`` of a Keycloak that has (or has not) seen traffic."""

    def __init__(self, n: int, traffic: bool) -> None:
        self.n = n
        self.traffic = traffic

    def _started(self, series: Series) -> bool:
        """A lazy series exists from its first event on: the second scrape, never on an idle Keycloak."""
        return not series.lazy or (self.traffic and self.n >= 2)

    def _ticks(self, series: Counter | Timer) -> int:
        """Scrapes' worth of growth so far; lazy series count their events from the first one."""
        if not (self.traffic or series.background):
            return 0
        return self.n - 1 if series.lazy else self.n

    def samples(self, family: catalog.Family, model: FamilyModel) -> list[tuple[str, Labels, float]]:
        out: list[tuple[str, Labels, float]] = []
        for s in model.series:
            if not self._started(s):
                continue
            if isinstance(s, Gauge):
                out.append(("", s.labels, s.values[self.n % len(s.values)] + s.per_scrape * self.n))
                continue
            ticks = self._ticks(s)
            count = s.start + s.per_scrape * ticks
            if isinstance(s, Counter):
                out.append(("", s.labels, count))
                continue
            if family.type == "histogram":
                for bound, share in zip(SLO_BOUNDS, s.within, strict=True):
                    out.append(("_bucket", (*s.labels, ("le", java_double(bound))), float(int(count * share))))
                out.append(("_bucket", (*s.labels, ("le", "+Inf")), count))
            out.append(("_count", s.labels, count))
            out.append(("_sum", s.labels, round(count * s.mean_seconds, 6)))
        return out


def _family_name(family: catalog.Family, openmetrics: bool) -> str:
    """OpenMetrics names a counter family without ``_total``; Keycloak's 0.0.4 output keeps it."""
    if openmetrics and family.type == "counter" and family.name.endswith("_total"):
        return family.name[: -len("_total")]
    return family.name


def render(n: int, *, openmetrics: bool = False, traffic: bool = True,
           families: Sequence[catalog.Family] = catalog.FAMILIES) -> bytes:
    """The body of scrape ``n`` (1-based) in either format."""
    missing = [f.name for f in families if f.name not in MODELS]
    if missing:
        raise LookupError(f"no exporter model for catalog families {missing}: add them to MODELS")
    snapshot = Snapshot(n, traffic)
    lines: list[str] = []
    for family in families:
        model = MODELS[family.name]
        samples = snapshot.samples(family, model)
        if not samples:  # a lazy family before its first event is not written at all
            continue
        name = _family_name(family, openmetrics)
        type_line, help_line = f"# TYPE {name} {family.type}", f"# HELP {name} {model.help}"
        lines += [type_line, help_line] if openmetrics else [help_line, type_line]
        lines += [f"{family.name}{suffix}{_label_text(labels, openmetrics)} {java_double(value)}"
                  for suffix, labels, value in samples]
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode()


# --- the server ----------------------------------------------------------------------------------------------
class KeycloakExporter:
    """``with KeycloakExporter() as kc:`` serves ``kc.url`` (``/metrics``) until the block ends."""

    path = "/metrics"

    def __init__(self, *, traffic: bool = True) -> None:
        self.traffic = traffic
        self.port = free_port()
        self._scrapes = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.accepts: list[str] = []
        """The Accept header of every scrape, in order."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}{self.path}"

    @property
    def scrapes(self) -> int:
        with self._lock:
            return self._scrapes

    def scrape(self, accept: str) -> tuple[str, bytes]:
        """What a GET with this ``Accept`` header answers: content type and body (one tick)."""
        with self._lock:
            self._scrapes += 1
            n = self._scrapes
            self.accepts.append(accept)
        openmetrics = "text/plain" not in accept
        return (OPENMETRICS if openmetrics else TEXT_004), render(n, openmetrics=openmetrics, traffic=self.traffic)

    def start(self) -> KeycloakExporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != exporter.path:
                    self.send_error(404)
                    return
                content_type, body = exporter.scrape(self.headers.get("Accept", ""))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="keycloak-exporter", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KeycloakExporter:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
