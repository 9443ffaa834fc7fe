"""The workers' metric files merged as ``MultiProcessCollector`` merges them, rereading only what changed.

Under ``uvicorn --workers N`` with ``PROMETHEUS_MULTIPROC_DIR`` every worker writes its values into
prometheus-client's files (``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_<mode>_<pid>.db``)
and a scrape merges them. ``MultiProcessCollector`` parses every entry of every file (a JSON key
each) and builds every sample anew on every scrape: ~20 µs per series with a few workers. Here:

- each file stays mapped; an entry's key is parsed once, when it first appears, and values are read
  with one ``struct`` call per block of ``BLOCK`` entries;
- a block whose values did not change costs one tuple comparison; the lines of a label set (a
  counter, a gauge, or a histogram's sum, buckets and count) are merged and rendered again only when
  one of its entries changed, and a family's text is joined again only then;
- ``refresh()`` works in small steps and yields between them, so a caller can let requests run
  while a scrape is being built.

What comes out: the families, samples and values ``MultiProcessCollector`` reports (a test holds the
two expositions equal), in its order on a first read (since prometheus-client 0.24; older versions
do not keep a label set's samples together, as OpenMetrics wants). Counters, summaries and histograms add up
across files (the files of a worker that exited stay, so totals never go backwards across worker
restarts); gauges combine by their ``multiprocess_mode``. One addition: a ``live*`` gauge file whose
process no longer runs is left out, as ``mark_process_dead`` would have removed it had the worker
lived to call it (a killed worker does not).

The file format is prometheus-client's (``mmap_dict``): a 4-byte used size, 4 bytes of padding, then
per entry a 4-byte key length, the UTF-8 JSON key ``[family, sample, labels, help]`` padded to 8
bytes, a double value and a double timestamp.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from fastapi_lookout.text_format import PLAIN_NAME, RenderedFamily, go_float, series_prefix

BLOCK = 64
"""Entries read by one ``struct`` call and compared as one tuple."""

_LENGTH = struct.Struct("=i")
_STAMPED = ("mostrecent", "livemostrecent")  # the newest timestamp wins between workers
_WITHOUT_PID = ("min", "livemin", "max", "livemax", "sum", "livesum", *_STAMPED)

Labels = tuple[tuple[str, str], ...]


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    return True


Ref = tuple[int, int, int]
"""Where one file entry's value is read: file number, block, position in the block. Only ints: the
cache holds a ref per entry of every file, and the garbage collector need not look at them."""
Values = list[list[tuple[float, ...]]]
"""Per file number, the values of its blocks as last read."""


class _Series:
    """One line of the merged exposition and where the file entries that make it up are read."""

    __slots__ = ("group", "items", "name", "prefix", "refs")

    def __init__(self, group: _Group, name: str, items: Labels) -> None:
        self.group, self.name, self.items = group, name, items
        self.prefix = series_prefix(name, dict(items)) if group.family.plain else ""
        self.refs: tuple[Ref, ...] = ()  # a tuple of int tuples: the garbage collector soon stops looking


class _Group:
    """A label set of a family: its lines, merged and rendered again together when one of its entries
    changed. A histogram's: its other samples (``_sum``), the cumulative buckets, then ``_count``."""

    __slots__ = ("bounds", "buckets", "count", "family", "series", "text")

    def __init__(self, family: _Family) -> None:
        self.family = family
        self.series: dict[str, _Series] = {}
        self.bounds: list[float] = []  # sorted
        self.buckets: list[_Series] = []  # in the order of ``bounds``
        self.count: _Series | None = None
        self.text = b""

    def add_bucket(self, bound: float, series: _Series) -> None:
        at = bisect_left(self.bounds, bound)
        self.bounds.insert(at, bound)
        self.buckets.insert(at, series)
        if self.count is None:
            self.count = _Series(self, self.family.name + "_count", tuple(i for i in series.items if i[0] != "le"))

    def rows(self) -> list[tuple[_Series, float]]:
        merge, values = self.family.merge, self.family.values
        rows = []
        for series in self.series.values():
            value = merge(series.refs)
            if value is not None:
                rows.append((series, value))
        if self.count is not None:
            cumulative, seen = 0.0, False
            for series in self.buckets:
                if series.refs:
                    seen = True
                    bucket = 0.0  # summed over the files first, then accumulated (the same floats)
                    for f, b, p in series.refs:
                        bucket += values[f][b][p]
                    cumulative += bucket
                    rows.append((series, cumulative))
            if seen:
                rows.append((self.count, cumulative))
        return rows

    def render(self) -> None:
        self.text = "".join([f"{series.prefix} {go_float(value)}\n" for series, value in self.rows()]).encode()


class _Family:
    __slots__ = ("body", "documentation", "groups", "mode", "name", "plain", "present", "stale", "type", "values")

    def __init__(self, name: str, documentation: str, typ: str, mode: str, values: Values) -> None:
        self.name, self.documentation, self.type, self.mode = name, documentation, typ, mode
        self.values = values
        self.plain = bool(PLAIN_NAME.match(name))
        self.groups: dict[Labels, _Group] = {}
        self.present = False  # an entry of a file read holds it (else no family: as if never read)
        self.stale = True
        self.body = b""  # every group's text, encoded

    def merge(self, refs: tuple[Ref, ...]) -> float | None:
        """One sample's value across the files holding it, as ``MultiProcessCollector`` combines them
        (in file order: the same float sums)."""
        if not refs:
            return None
        values = self.values
        if self.type != "gauge" or self.mode in ("sum", "livesum"):
            total = 0.0
            for f, b, p in refs:
                total += values[f][b][p]
            return total
        if self.mode in ("min", "livemin", "max", "livemax"):
            smallest = self.mode.endswith("min")
            f, b, p = refs[0]
            best = values[f][b][p]
            for f, b, p in refs[1:]:
                value = values[f][b][p]
                if (value < best) if smallest else (value > best):
                    best = value
            return best
        if self.mode in _STAMPED:
            found, newest = None, 0.0
            for f, b, p in refs:
                if newest < values[f][b][p + 1]:
                    found, newest = values[f][b][p], values[f][b][p + 1]
            return found
        f, b, p = refs[-1]  # all, liveall: one file per series (the pid is a label)
        return values[f][b][p]


class _File:
    """One process's file, mapped. Entry ``i`` adds to ``entries[i]``; its value is read by block."""

    __slots__ = ("blocks", "covered", "entries", "ident", "kind", "map", "mode", "number", "offsets", "path",
                 "per_pid", "pid", "used", "values", "width")

    def __init__(self, path: str, ident: tuple[int, int], table: Values) -> None:
        parts = os.path.basename(path)[:-3].split("_")
        self.path, self.ident, self.kind = path, ident, parts[0]
        self.mode = parts[1] if self.kind == "gauge" and len(parts) > 2 else ""
        self.pid = parts[-1]
        self.per_pid = self.kind == "gauge" and self.mode not in _WITHOUT_PID  # the pid is a label
        self.width = 2 if self.mode in _STAMPED else 1  # values alone, or (value, timestamp) pairs
        self.map: mmap.mmap | None = None
        self.used = 8
        self.entries: list[_Series] = []
        self.offsets: list[int] = []  # of each entry's value
        self.blocks: list[tuple[int, struct.Struct]] = []  # (offset of its first value, its reader)
        self.values: list[tuple[float, ...]] = []  # per block, as last read
        self.number = len(table)
        table.append(self.values)
        self.covered = 0  # entries the blocks cover

    def used_now(self) -> int:
        """The file's used size (0: gone); maps the file, and maps it again when it has grown."""
        try:
            if self.map is None or _LENGTH.unpack_from(self.map, 0)[0] > len(self.map):
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < 8:
                        return 0
                    if self.map is not None:
                        self.map.close()
                    self.map = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return 0
        return min(_LENGTH.unpack_from(self.map, 0)[0], len(self.map))

    def cover(self) -> Iterator[bytes]:
        """Readers for the entries no block covers yet (the last block is rebuilt: it may have grown);
        yields ``b""`` between batches. The new readers replace the old ones at the end, all at once."""
        first = self.covered // BLOCK
        blocks, values, one = [], [], "d" * self.width
        for n, start in enumerate(range(first * BLOCK, len(self.offsets), BLOCK)):
            offsets = self.offsets[start:start + BLOCK]
            fmt, end = ["="], offsets[0]
            for offset in offsets:
                fmt.append(f"{offset - end}x{one}" if offset > end else one)
                end = offset + 8 * self.width
            blocks.append((offsets[0], struct.Struct("".join(fmt))))
            values.append(self.values[first + n] if first + n < len(self.values) else ())
            if n % 16 == 15:
                yield b""
        self.blocks[first:], self.values[first:] = blocks, values  # the values list stays the same object
        self.covered = len(self.offsets)

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None


class SharedFiles:
    """The merged view of the files in ``directory``: ``refresh()`` (step by step), then ``collect()``."""

    def __init__(self, directory: str, alive: Callable[[int], bool] = pid_running) -> None:
        self.directory = directory
        self._alive = alive
        self._files: dict[str, _File] = {}
        self._placed: dict[bytes | tuple[bytes, str], _Series] = {}  # by entry key (and pid, if it is a label)
        self._bounds: dict[str, tuple[float, str]] = {}
        self._plain_names: dict[tuple[str, ...], bool] = {}
        self._series: dict[tuple[str, str, Labels], _Series] = {}
        self._families: dict[str, _Family] = {}
        self._dirty: set[_Group] = set()
        self._values: Values = []  # by file number

    def refresh(self, values: bool = True) -> Iterator[bytes]:
        """Bring the merged view up to date; yields ``b""`` between steps, where a caller may pause.
        ``values=False`` only takes in the entries written since (the costly part of a first read)."""
        listed = self._listing()
        for path in [p for p, file in self._files.items() if listed.get(p) != file.ident]:
            self._drop(self._files.pop(path))
        yield b""
        for path, ident in listed.items():
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = _File(path, ident, self._values)
            yield from self._read(file, values)
        if not values:
            return
        for n, group in enumerate(self._dirty):
            group.render()
            group.family.stale = True
            if n % 32 == 31:
                yield b""
        self._dirty.clear()
        for family in self._families.values():
            if family.stale:
                family.body = b"".join([group.text for group in family.groups.values()])
                family.stale = False
        yield b""

    def collect(self) -> Iterator[Metric]:
        """The families as of the last ``refresh()``."""
        for family in self._families.values():
            if not family.present:
                continue  # every file that held it is gone
            if family.plain:
                yield RenderedFamily(family.name, family.documentation, family.type,
                                     lambda _openmetrics, f=family: (f.body,), lambda f=family: _samples(f))
            else:  # names prometheus-client's encoder must write
                metric = Metric(family.name, family.documentation, family.type)
                metric.samples = _samples(family)
                yield metric

    # -- reading ------------------------------------------------------------------------------------
    def _listing(self) -> dict[str, tuple[int, int]]:
        """The ``*.db`` files in directory order (``MultiProcessCollector``'s glob order) with their
        identity; live gauges of processes that no longer run are left out."""
        listed = {}
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not entry.name.endswith(".db"):
                    continue
                parts = entry.name[:-3].split("_")
                if (parts[0] == "gauge" and len(parts) == 3 and parts[1].startswith("live") and parts[2].isdigit()
                        and not self._alive(int(parts[2]))):
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # removed since the listing (mark_process_dead)
                    continue
                listed[entry.path] = (stat.st_dev, stat.st_ino)
        return listed

    def _read(self, file: _File, values: bool = True) -> Iterator[bytes]:
        used = file.used_now()
        if used < file.used:  # emptied or rewritten in place: read it anew
            self._drop(file)
            file = self._files[file.path] = _File(file.path, file.ident, self._values)
            used = file.used_now()
        if file.map is None:
            return
        yield from self._new_entries(file, used)
        if file.covered < len(file.offsets):
            yield from file.cover()
        if not values:
            return
        data, read, entries, dirty = file.map, file.values, file.entries, self._dirty
        for b, (offset, reader) in enumerate(file.blocks):
            new = reader.unpack_from(data, offset)
            if new != read[b]:
                read[b] = new
                for series in entries[b * BLOCK:(b + 1) * BLOCK]:
                    dirty.add(series.group)
            if b % 64 == 63:
                yield b""

    def _new_entries(self, file: _File, used: int) -> Iterator[bytes]:
        """Takes in the entries written since the last read (``used``: the file's used size now). One
        loop, nothing per entry but what it needs: most keys were parsed already, from another file."""
        data, pos, entries, offsets = file.map, file.used, file.entries, file.offsets
        assert data is not None
        placed, add_dirty, pid, number, width = self._placed, self._dirty.add, file.pid, file.number, file.width
        while pos < used:
            length = _LENGTH.unpack_from(data, pos)[0]
            if length + pos > used:
                raise RuntimeError(f"{file.path}: read beyond the used size, the file is corrupted")
            key = data[pos + 4:pos + 4 + length]
            offset = pos + 4 + length + (8 - (length + 4) % 8)
            series = placed.get((key, pid) if file.per_pid else key)
            if series is None:
                series = self._first_seen(file, key)
            n = len(entries)
            if not series.refs:
                series.group.family.present = True
            series.refs += ((number, n // BLOCK, (n % BLOCK) * width),)
            entries.append(series)
            offsets.append(offset)
            add_dirty(series.group)
            pos = file.used = offset + 16
            if n % 64 == 63:
                yield b""

    def _first_seen(self, file: _File, key: bytes) -> _Series:
        """The series of a key no file held before: parsed once (the other workers' files hold the same keys)."""
        family_name, name, labels, documentation = json.loads(key.decode("utf-8"))
        family = self._families.get(family_name)
        if family is None:
            family = self._families[family_name] = _Family(family_name, documentation, file.kind, file.mode,
                                                           self._values)
        series = self._placed[(key, file.pid) if file.per_pid else key] = self._place(family, file.pid, name, labels)
        return series

    def _place(self, family: _Family, pid: str, name: str, labels: dict[str, str]) -> _Series:
        """The series an entry adds to, named and labelled as ``MultiProcessCollector`` names them."""
        bound = None
        if family.type == "histogram" and "le" in labels:
            bound, le = self._bound(labels.pop("le"))
            items: Labels = tuple(sorted(labels.items()))
            name = family.name + "_bucket"
            key = (family.name, name, (*items, ("le", le)))
        else:
            items = tuple(sorted(labels.items()))
            if family.type == "gauge" and family.mode not in _WITHOUT_PID:
                items += (("pid", pid),)
            key = (family.name, name, items)
        series = self._series.get(key)
        if series is not None:
            return series
        if family.plain and not self._plain(tuple(labels)):
            family.plain = False  # prometheus-client's encoder writes it, from samples
        group = family.groups.get(items)
        if group is None:
            group = family.groups[items] = _Group(family)
        series = self._series[key] = _Series(group, name, key[2])
        if bound is None:
            group.series[name] = series
        else:
            group.add_bucket(bound, series)
        return series

    def _plain(self, names: tuple[str, ...]) -> bool:
        found = self._plain_names.get(names)
        if found is None:
            found = self._plain_names[names] = all(PLAIN_NAME.match(name) for name in names)
        return found

    def _bound(self, le: str) -> tuple[float, str]:
        """A bucket's upper bound, and its ``le`` as ``MultiProcessCollector`` writes it."""
        found = self._bounds.get(le)
        if found is None:
            bound = float(le)
            found = self._bounds[le] = (bound, floatToGoString(bound))
        return found

    def _drop(self, file: _File) -> None:
        """A file that is gone (a live gauge of a dead worker) or rewritten: its entries count no more."""
        families = set()
        for series in set(file.entries):
            series.refs = tuple(ref for ref in series.refs if ref[0] != file.number)
            self._dirty.add(series.group)
            families.add(series.group.family)
        for family in families:
            family.present = any(series.refs for group in family.groups.values()
                                 for series in (*group.series.values(), *group.buckets))
        file.close()
        file.values.clear()  # its number is not used again


def _samples(family: _Family) -> list[Sample]:
    return [Sample(series.name, dict(series.items), value)
            for group in family.groups.values() for series, value in group.rows()]
