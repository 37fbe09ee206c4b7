"""What this process may really use: CPUs and memory from the container's limits (cgroups).

``os.sched_getaffinity`` counts the cores a process may run on, but a container's CPU
*quota* (Docker's ``--cpus``, Streamlit Community Cloud's limit; cgroup v2 ``cpu.max``,
v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) is invisible there: on a 16-core host a
container allowed 2 CPUs still sees 16 cores, and torch's thread pool of 16 threads then
takes turns on 2 CPUs' worth of time (throttled, slower than 2 threads). Likewise the
memory a container may still take is its cgroup's limit minus what it uses (v2
``memory.max`` - ``memory.current``, v1 ``memory.limit_in_bytes`` - ``memory.usage_in_bytes``,
page cache that can be dropped, ``inactive_file``, not counted as used), which
``/proc/meminfo`` does not know.

Everything here is pure file reading (no torch, no Streamlit), and the cgroup root is a
parameter (``CVLAB_CGROUP_ROOT`` in the environment, else ``/sys/fs/cgroup``), so the tests
run it on fake cgroup trees. The limits that bind a process are its own cgroup's and every
ancestor's (``/proc/self/cgroup`` names it); inside a container its own cgroup is usually
mounted at the root itself, which is also read. The tightest limit wins.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "CVLAB_CGROUP_ROOT"
DEFAULT_ROOT = "/sys/fs/cgroup"
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712)
MB = 1024 * 1024


def cgroup_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _proc_cgroup() -> str:
    return _read(Path("/proc/self/cgroup")) or ""


def _dirs(root: Path, controller: str, proc_cgroup: str) -> list[Path]:
    """The cgroup folders whose limits apply to this process, innermost first: its own
    cgroup (``/proc/self/cgroup``) and every ancestor, for v2 (``root/<path>``) and v1
    (``root/<controller>/<path>``), plus the roots themselves; only those that exist."""
    found: list[Path] = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            base = root  # v2: "0::/path"
        elif controller in controllers.split(","):
            base = root / controller  # v1: "4:memory:/path"
        else:
            continue
        here = base / rel.strip().lstrip("/")
        while True:
            found.append(here)
            if here == base or base not in here.parents:
                break
            here = here.parent
    found += [root, root / controller]
    out: list[Path] = []
    for d in found:
        if d not in out and d.is_dir():
            out.append(d)
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_quota(root: Path | str | None = None, proc_cgroup: str | None = None) -> float | None:
    """CPUs' worth of time the cgroup quota allows (quota / period, e.g. 1.5), None without a quota.

    cgroup v2 ``cpu.max`` is "<quota> <period>" in microseconds, or "max <period>" for no
    limit; v1 has ``cpu.cfs_quota_us`` (-1: no limit) and ``cpu.cfs_period_us``."""
    root = Path(root) if root is not None else cgroup_root()
    proc_cgroup = _proc_cgroup() if proc_cgroup is None else proc_cgroup
    quotas = []
    for d in _dirs(root, "cpu", proc_cgroup):
        v2 = _read(d / "cpu.max")
        if v2 is not None:
            fields = v2.split()
            quota, period = (_int(fields[0]), _int(fields[1]) if len(fields) > 1 else 100_000) if fields else (None, None)
        else:
            quota, period = _int(_read(d / "cpu.cfs_quota_us")), _int(_read(d / "cpu.cfs_period_us"))
        if quota is not None and quota > 0 and period:
            quotas.append(quota / period)
    return min(quotas) if quotas else None


def cpu_limit(affinity: int, quota: float | None) -> int:
    """Threads worth running: the cores this process may use, fewer if the quota allows less
    time (rounded up: a quota of 1.5 CPUs gives 2 threads, 0.5 gives 1)."""
    affinity = max(1, int(affinity))
    if quota is None or quota <= 0:
        return affinity
    return max(1, min(affinity, math.ceil(quota - 1e-9)))


@dataclass(frozen=True)
class Memory:
    available: int  # bytes this process may still take
    source: str  # where the figure comes from, for a caption
    limit: int | None = None  # the binding cgroup limit in bytes, None when it is /proc/meminfo


def _meminfo_available(meminfo: Path) -> int | None:
    text = _read(meminfo)
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _stat(d: Path, key: str) -> int:
    for line in (_read(d / "memory.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return _int(value) or 0
    return 0


def memory_available(root: Path | str | None = None, proc_cgroup: str | None = None,
                     meminfo: Path | str = "/proc/meminfo") -> Memory | None:
    """The memory this process may still take, the smallest of: every cgroup limit that binds
    it minus that cgroup's usage (less its inactive page cache, which the kernel drops before
    it kills anything), and ``MemAvailable`` in ``meminfo``. None where none is readable."""
    root = Path(root) if root is not None else cgroup_root()
    proc_cgroup = _proc_cgroup() if proc_cgroup is None else proc_cgroup
    found: list[Memory] = []
    for d in _dirs(root, "memory", proc_cgroup):
        limit, used = _int(_read(d / "memory.max")), _int(_read(d / "memory.current"))
        version, cache = "v2 memory.max − memory.current", _stat(d, "inactive_file")
        if limit is None and used is None:
            limit, used = _int(_read(d / "memory.limit_in_bytes")), _int(_read(d / "memory.usage_in_bytes"))
            version, cache = "v1 memory.limit_in_bytes − memory.usage_in_bytes", _stat(d, "total_inactive_file")
        if limit is None or limit >= UNLIMITED or used is None:
            continue
        used = max(0, used - min(cache, used))
        found.append(Memory(max(0, limit - used), f"cgroup {version}", limit))
    free = _meminfo_available(Path(meminfo))
    if free is not None:
        found.append(Memory(free, "MemAvailable in /proc/meminfo"))
    return min(found, key=lambda m: m.available) if found else None


@dataclass(frozen=True)
class WorkerCap:
    allowed: tuple[int, ...]  # the worker counts that fit
    most: int  # the largest count that fits (at least 1: one worker always may run)
    note: str | None  # a sentence for the page when a choice is left out, else None


def worker_cap(choices, per_worker_mb: float, memory: Memory | None) -> WorkerCap:
    """Which of ``choices`` (worker counts) fit in ``memory``, each worker costing ``per_worker_mb``.

    N workers need about N × ``per_worker_mb``; a count fits when that is within what is
    available. One worker is always allowed (the smallest choice), so the page keeps a run
    to show; without a reading (not Linux) every choice is allowed."""
    choices = tuple(sorted(int(n) for n in choices))
    if memory is None:
        return WorkerCap(choices, choices[-1], None)
    free_mb = memory.available / MB
    allowed = tuple(n for n in choices if n * per_worker_mb <= free_mb) or choices[:1]
    most = allowed[-1]
    if most == choices[-1]:
        return WorkerCap(allowed, most, None)
    biggest = choices[-1]
    note = (f"{biggest} workers would need about {biggest * per_worker_mb:,.0f} MB; this server has "
            f"{free_mb:,.0f} MB available ({memory.source}), so at most {most}"
            + (" (which may not fit either)." if most * per_worker_mb > free_mb else "."))
    return WorkerCap(allowed, most, note)
