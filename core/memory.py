"""Give memory the process has freed back to the operating system.

Streamlit runs each script run in its own thread. A forward pass over a batch, an attribution
map or an embedding gallery allocates hundreds of megabytes and frees them a second later, but
glibc keeps most freed heap pages mapped for the next allocation, so the server's resident
memory drifts up to the sum of every run's high-water mark (measured: a warm server held about
0.6 GB more than it used). ``release()`` asks glibc to return those pages (``malloc_trim``);
it costs a few milliseconds and is a no-op where the C library has no such call (macOS, musl).

The other half is ``limit_arenas()``: glibc gives each thread that allocates its own malloc
arena (up to 8 per core), and memory freed in one arena is not reused by a thread that
allocates from another. Streamlit runs every script run in a new thread, so tours of the app
by new sessions make the server grow (measured, 3 tours of Home and 11 pages: +106 MB with
glibc's default, +42 MB with 2 arenas). ``MALLOC_ARENA_MAX=2`` in the environment does it, but
only when it is there before the interpreter starts, which Streamlit Community Cloud cannot
arrange (secrets become environment variables after start-up). ``limit_arenas()`` calls
glibc's ``mallopt(M_ARENA_MAX, 2)`` from Python instead, which caps the arenas made from then
on. It must come early: glibc fixes its own ceiling (8 per core) for good once a 10th arena
exists, and Streamlit 1.67 has made about 14 (one per server thread) before the app's first
script run, so there (``components/__init__.py``) it comes too late and says so
(``"too late (14 arenas already)"``): on such a server only ``MALLOC_ARENA_MAX=2`` before
start-up limits the arenas. It does work wherever it runs before the threads (a plain
interpreter, a worker process). An explicit ``MALLOC_ARENA_MAX`` present when the
process started (or ``GLIBC_TUNABLES`` naming ``glibc.malloc.arena_max``) is left to glibc, and
``CVLAB_ARENAS=0`` switches the call off (``CVLAB_ARENAS=N``: N arenas).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

ARENAS = 2  # malloc arenas of the server (MALLOC_ARENA_MAX=2, as scripts/run.sh and the Dockerfile set)
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS_ENV = "CVLAB_ARENAS"  # "0": leave glibc's default (the benchmark's comparison); "N": N arenas
ARENA_TEST = 8  # glibc (64-bit): with more arenas than this, its ceiling of 8 per core is fixed for good
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MiB up (an image, a feature map) get their own mapping
MMAP_ENV = "CVLAB_MMAP_THRESHOLD"  # bytes; "0": leave glibc's sliding threshold (the comparison)
HEAP = 64 << 20  # glibc's HEAP_MAX_SIZE (64-bit): every heap of a non-main arena is a 64 MiB-aligned mapping
_arenas: str | None = None  # what limit_arenas() did in this process, once it ran


@functools.cache
def _trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


@functools.cache
def _mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def _heaps(pid: int | str = "self") -> list[int]:
    """Start addresses of the malloc heaps of non-main arenas (64 MiB-aligned anonymous regions
    of 64 MiB in ``/proc/<pid>/maps``: glibc reserves each as one mapping, part read-write, the
    rest PROT_NONE). An arena that outgrew its first heap has several."""
    regions: list[list[int]] = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) > 5:  # a file, [stack], [heap]...: not an arena's heap
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if regions and regions[-1][1] == start and regions[-1][0] % HEAP == 0 and end - regions[-1][0] <= HEAP:
                regions[-1][1] = end
            else:
                regions.append([start, end])
    return [s for s, e in regions if s % HEAP == 0 and e - s == HEAP]


def arena_count(pid: int | str = "self") -> int | None:
    """glibc malloc arenas of a process (the main one included), None where it cannot be read
    (not Linux, or another user's process). Each heap starts with glibc's ``heap_info``
    {ar_ptr, prev, ...}; an arena's first heap has ``prev == NULL``, so those are counted
    (``/proc/<pid>/mem``: this process, or a child of it)."""
    try:
        starts = _heaps(pid)
        first = 0
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for start in starts:
                mem.seek(start + ctypes.sizeof(ctypes.c_void_p))
                first += not any(mem.read(ctypes.sizeof(ctypes.c_void_p)))
        return 1 + first
    except (OSError, ValueError):
        return None


def _at_start(name: str) -> str:
    """An environment variable as it was when this process started (``/proc/self/environ``):
    glibc reads its settings then; one set later (Community Cloud's secrets) it never saw."""
    try:
        with open("/proc/self/environ", "rb") as env:
            for item in env.read().split(b"\0"):
                key, _, value = item.partition(b"=")
                if key.decode(errors="replace") == name:
                    return value.decode(errors="replace")
        return ""
    except OSError:
        return os.environ.get(name, "")


def limit_arenas(n: int = ARENAS) -> str:
    """Cap glibc's malloc arenas at ``n`` for the rest of this process (once; later calls
    return the first call's outcome). Arenas that threads already made stay, none are added.

    Returns what happened: ``"set to N"`` (``mallopt`` returned 1), ``"too late (K arenas
    already)"`` (more than glibc's ``ARENA_TEST`` existed, so its own ceiling was already
    fixed and the call changes nothing), ``"environment"`` (``MALLOC_ARENA_MAX`` or a glibc
    tunable was there when the process started: glibc applied it), ``"off"``
    (``CVLAB_ARENAS=0``), ``"unsupported"`` (no glibc ``mallopt``: macOS, musl, Windows) or
    ``"refused"`` (``mallopt`` returned 0)."""
    global _arenas
    if _arenas is not None:
        return _arenas
    n = _env_int(ARENAS_ENV, n)
    if _at_start("MALLOC_ARENA_MAX").strip() or "arena_max" in _at_start("GLIBC_TUNABLES"):
        _arenas = "environment"
    elif n <= 0:
        _arenas = "off"
    elif (mallopt := _mallopt()) is None:
        _arenas = "unsupported"
    else:
        before = arena_count()
        if mallopt(M_ARENA_MAX, int(n)) != 1:
            _arenas = "refused"
        elif before is not None and before > ARENA_TEST:
            _arenas = f"too late ({before} arenas already)"
        else:
            _arenas = f"set to {n}"
    return _arenas


_mmap: str | None = None


def _env_int(name: str, default: int) -> int:
    """The whole number in environment variable ``name``, or ``default`` when unset or not one."""
    try:
        return int(os.environ.get(name, "").strip())
    except ValueError:
        return default


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> str:
    """Serve every block of ``nbytes`` or more with its own ``mmap`` for the rest of this
    process, so freeing it hands the memory straight back to the OS (once; later calls return
    the first outcome). Works at any time, unlike the arena limit.

    glibc's default threshold slides: after a large mapped block is freed it rises to that
    block's size (up to 32 MiB), and later blocks of that size come from the arenas, where
    with many arenas they pile up. A fixed threshold stops the slide. Returns ``"set to N"``,
    ``"environment"`` (``MALLOC_MMAP_THRESHOLD_`` was set at start), ``"off"``
    (``CVLAB_MMAP_THRESHOLD=0``), ``"unsupported"`` or ``"refused"``."""
    global _mmap
    if _mmap is not None:
        return _mmap
    nbytes = _env_int(MMAP_ENV, nbytes)
    if _at_start("MALLOC_MMAP_THRESHOLD_").strip() or "mmap_threshold" in _at_start("GLIBC_TUNABLES"):
        _mmap = "environment"
    elif nbytes <= 0:
        _mmap = "off"
    elif (mallopt := _mallopt()) is None:
        _mmap = "unsupported"
    else:
        _mmap = f"set to {nbytes}" if mallopt(M_MMAP_THRESHOLD, int(nbytes)) == 1 else "refused"
    return _mmap


def release() -> bool:
    """Return freed heap memory to the OS; True if the C library could (glibc's ``malloc_trim``)."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True


def _status_mb(key: str, pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux ``/proc``), or None where unavailable."""
    return _status_mb("VmRSS")


def peak_mb() -> float | None:
    """This process's peak resident memory so far in MB (``VmHWM``), or None where unavailable."""
    return _status_mb("VmHWM")
