"""Memory and threads from the container's real limits: cgroup CPU quota and memory, the
Distributed training page's worker cap, glibc's arena limit and the start-up hook.

The cgroup readers take the cgroup root as a parameter, so they run here on fake trees."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from core import distributed as D
from core import memory, resources
from core.resources import MB, Memory, cpu_limit, cpu_quota, memory_available, worker_cap

ROOT = Path(__file__).resolve().parent.parent
V2 = "0::/\n"  # /proc/self/cgroup of a process in a cgroup-v2 container (its cgroup at the root)
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


# --- CPU ------------------------------------------------------------------------------------


@pytest.mark.parametrize("files, proc, quota", [
    ({}, V2, None),  # no cgroup files at all
    ({"cpu.max": "max 100000"}, V2, None),  # v2, no limit
    ({"cpu.max": "200000 100000"}, V2, 2.0),  # docker --cpus=2
    ({"cpu.max": "150000 100000"}, V2, 1.5),
    ({"cpu.max": "50000 100000"}, V2, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, "2:cpu,cpuacct:/\n", None),  # v1, no limit
    ({"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000"}, "2:cpu,cpuacct:/\n", 1.5),  # v1
    ({"cpu/cpu.cfs_quota_us": "150000"}, "2:cpu,cpuacct:/\n", None),  # v1 without a period: unreadable
    ({"cpu.max": "garbage"}, V2, None),
    # v2, the process in a child cgroup: its own and its parent's limits, the tightest wins
    ({"app/cpu.max": "max 100000", "cpu.max": "300000 100000", "app/web/cpu.max": "250000 100000"},
     "0::/app/web\n", 2.5),
    ({"app/cpu.max": "100000 100000", "app/web/cpu.max": "max 100000"}, "0::/app/web\n", 1.0),
    # v1 in a named cgroup below the controller's mount
    ({"cpu/docker/abc/cpu.cfs_quota_us": "50000", "cpu/docker/abc/cpu.cfs_period_us": "100000"},
     "4:cpu,cpuacct:/docker/abc\n", 0.5),
])
def test_cpu_quota_from_fake_cgroup_trees(tmp_path, files, proc, quota):
    got = cpu_quota(_tree(tmp_path, files), proc)
    assert got == (None if quota is None else pytest.approx(quota))


@pytest.mark.parametrize("affinity, quota, threads", [
    (16, None, 16),  # no limit: every core of the affinity mask
    (16, 2.0, 2),
    (16, 1.5, 2),  # rounded up: 1.5 CPUs keep 2 threads busy
    (16, 0.5, 1),
    (2, 4.0, 2),  # a quota above the cores changes nothing
    (4, 0.01, 1),
    (0, None, 1),
])
def test_cpu_limit(affinity, quota, threads):
    assert cpu_limit(affinity, quota) == threads


def test_cpu_threads_reads_the_root_from_the_environment(tmp_path, monkeypatch):
    from core.devices import cpu_affinity, cpu_threads

    monkeypatch.setenv(resources.ROOT_ENV, str(_tree(tmp_path, {"cpu.max": "100000 100000"})))
    assert cpu_threads() == 1
    monkeypatch.setenv(resources.ROOT_ENV, str(tmp_path / "nowhere"))
    assert cpu_threads() == cpu_affinity()


def _fresh(code: str, env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", resources.ROOT_ENV)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


def test_startup_sizes_torch_to_a_faked_quota_in_a_fresh_process(tmp_path):
    """The app's start-up hook (importing ``components``, as every page does first) under a
    cgroup quota of 1 CPU: torch, imported afterwards, runs 1 thread, and the hook did not
    import torch itself. Without a quota torch keeps every core of the affinity mask."""
    from core.devices import cpu_affinity

    code = ("import sys; import components; print('torch' in sys.modules); "
            "import torch; print(torch.get_num_threads())")
    root = _tree(tmp_path / "quota", {"cpu.max": "100000 100000"})
    assert _fresh(code, {resources.ROOT_ENV: str(root)}) == ["False", "1"]
    free = _tree(tmp_path / "free", {"cpu.max": "max 100000"})
    assert _fresh(code, {resources.ROOT_ENV: str(free)}) == ["False", str(cpu_affinity())]


def test_startup_lowers_torch_when_it_was_imported_first(tmp_path):
    code = "import torch; import components; print(torch.get_num_threads())"
    root = _tree(tmp_path, {"cpu.max": "100000 100000"})
    assert _fresh(code, {resources.ROOT_ENV: str(root)}) == ["1"]


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_startup_keeps_a_thread_count_the_user_set(tmp_path, name):
    code = "import os, components, torch; print(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'))"
    root = _tree(tmp_path, {"cpu.max": "100000 100000"})
    got = _fresh(code, {resources.ROOT_ENV: str(root), name: "2"})
    assert got[1] == ("2" if name == "OMP_NUM_THREADS" else "None")  # nothing added to the user's setting
    if name == "OMP_NUM_THREADS":
        assert got[0] == "2"


def test_onnx_runtime_sessions_get_the_quota(tmp_path, monkeypatch):
    """A session made without a thread count gets ``cpu_threads()`` (ONNX Runtime's own default
    counts the host's cores)."""
    import torch

    from core import export

    monkeypatch.setenv(resources.ROOT_ENV, str(_tree(tmp_path, {"cpu.max": "100000 100000"})))
    path = export.export_onnx(torch.nn.Linear(4, 2).eval(), torch.zeros(1, 4), tmp_path / "m.onnx")
    session = export.ort_session(path)
    assert session.get_session_options().intra_op_num_threads == 1


# --- memory ---------------------------------------------------------------------------------


def _meminfo(tmp_path: Path, available_kb: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   {available_kb} kB\n")
    return path


@pytest.mark.parametrize("files, proc, avail_kb, expected_mb, source", [
    ({}, V2, 8_000_000, 8_000_000 / 1024, "MemAvailable"),  # no cgroup: /proc/meminfo
    ({"memory.max": "max", "memory.current": "1000000000"}, V2, 8_000_000, 8_000_000 / 1024, "MemAvailable"),
    # Community Cloud-like: 2.7 GB limit, 1.2 GB used -> 1.5 GB
    ({"memory.max": "2700000000", "memory.current": "1200000000"}, V2, 8_000_000, 1_500_000_000 / MB, "v2"),
    # inactive page cache is not counted as used
    ({"memory.max": "2700000000", "memory.current": "1200000000", "memory.stat": "anon 1\ninactive_file 200000000"},
     V2, 8_000_000, 1_700_000_000 / MB, "v2"),
    # the machine has less left than the cgroup allows: the smaller one wins
    ({"memory.max": "2700000000", "memory.current": "200000000"}, V2, 1_000_000, 1_000_000 / 1024, "MemAvailable"),
    # v1
    ({"memory/memory.limit_in_bytes": "2147483648", "memory/memory.usage_in_bytes": "1073741824"},
     "4:memory:/\n", 8_000_000, 1024.0, "v1"),
    ({"memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "1073741824"},
     "4:memory:/\n", 8_000_000, 8_000_000 / 1024, "MemAvailable"),  # v1 "no limit"
    ({"memory/memory.limit_in_bytes": "2147483648", "memory/memory.usage_in_bytes": "1073741824",
      "memory/memory.stat": "total_inactive_file 536870912"}, "4:memory:/\n", 8_000_000, 1536.0, "v1"),
    # over the limit already: nothing left
    ({"memory.max": "1000000000", "memory.current": "1100000000"}, V2, 8_000_000, 0.0, "v2"),
    # a parent's limit binds a child cgroup
    ({"memory.max": "max", "memory.current": "5", "app/memory.max": "2000000000", "app/memory.current": "500000000",
      "app/web/memory.max": "max", "app/web/memory.current": "400000000"}, "0::/app/web\n", 8_000_000,
     1_500_000_000 / MB, "v2"),
])
def test_memory_available_from_fake_trees(tmp_path, files, proc, avail_kb, expected_mb, source):
    got = memory_available(_tree(tmp_path / "cg", files), proc, _meminfo(tmp_path, avail_kb))
    assert got.available / MB == pytest.approx(expected_mb)
    assert source in got.source


def test_memory_available_without_anything_readable(tmp_path):
    assert memory_available(tmp_path, V2, tmp_path / "no-meminfo") is None


def test_memory_available_here_is_at_most_what_the_machine_has():
    found = memory_available()
    if platform.system() == "Linux":
        assert found is not None and 0 <= found.available <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# --- the Distributed training page's cap -------------------------------------------------------


def _mb(n: float) -> Memory:
    return Memory(int(n * MB), "cgroup v2 memory.max − memory.current", 2700 * MB)


@pytest.mark.parametrize("available_mb, allowed, most", [
    (None, (1, 2, 4), 4),  # nothing readable (not Linux): every choice
    (24_000, (1, 2, 4), 4),
    (2_000, (1, 2, 4), 4),  # exactly 4 x 500
    (1_999, (1, 2), 2),
    (1_500, (1, 2), 2),
    (999, (1,), 1),
    (100, (1,), 1),  # one worker is always offered
])
def test_worker_cap(available_mb, allowed, most):
    cap = worker_cap((4, 1, 2), 500.0, None if available_mb is None else _mb(available_mb))
    assert cap.allowed == allowed and cap.most == most
    assert (cap.note is None) == (most == 4)
    if cap.note:
        assert cap.note.startswith("4 workers would need about 2,000 MB; this server has ")
        assert f"{available_mb:,} MB available" in cap.note and f"so at most {most}" in cap.note
        assert ("may not fit" in cap.note) == (available_mb < 500)


def test_the_page_uses_the_declared_per_worker_figure():
    assert 300 <= D.WORKER_MB <= 1500
    assert "resources.worker_cap(WORKER_CHOICES, D.WORKER_MB," in (ROOT / "pages/17_Distributed_training.py").read_text()


def test_page_offers_only_the_worker_counts_that_fit(tmp_path, monkeypatch):
    """Under a cgroup with 1.2 GB left, the page offers 1 and 2 workers and says why not 4."""
    from tests.test_pages import _page

    root = _tree(tmp_path, {"memory.max": "2700000000", "memory.current": "1500000000"})
    monkeypatch.setenv(resources.ROOT_ENV, str(root))
    at = _page("pages/17_Distributed_training.py")
    assert not at.exception, [e.value for e in at.exception]
    workers = at.multiselect(key="ddp.workers")
    assert list(workers.options) == ["1", "2"] and list(workers.value) == [1, 2]
    note = next(c.value for c in at.caption if "workers would need" in c.value)
    assert "4 workers would need about 2,000 MB" in note and "1,144 MB available" in note and "at most 2" in note


def test_worker_reports_its_peak_memory(tmp_path):
    data = D.make_data(64, 16, 0)
    run = D.launch(D.Settings(world_size=1, batch=8, steps=2, n_train=64, n_test=16), data=data,
                   workdir=tmp_path, timeout_s=300)
    peak = run.workers[0]["peak_rss_mb"]
    assert peak is not None and 50 < peak < 4000
    assert D.summary_row(D.summary(run))["worker_peak_rss_mb"] == round(peak, 1)


# --- glibc's malloc arenas and the start-up hook -------------------------------------------------


ARENA_PROBE = """
import ctypes, sys, threading
{before}
barrier = threading.Barrier(17)
def work():
    bytearray(300_000)  # a malloc in this thread: glibc gives it an arena
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads:
    t.start()
barrier.wait()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
for t in threads:
    t.join()
"""


def _arenas(before: str, env: dict[str, str]) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES", memory.ARENAS_ENV)}
    out = subprocess.run([sys.executable, "-c", ARENA_PROBE.format(before=before)], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return sum(line.startswith("Arena ") for line in out.stderr.splitlines()), out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_mallopt_accepts_the_arena_limit():
    mallopt = memory._mallopt()
    assert mallopt is not None
    assert mallopt(memory.M_ARENA_MAX, memory.ARENAS) == 1


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc arenas")
def test_limit_arenas_caps_the_arenas_threads_get():
    """16 threads alive at once: glibc's default gives them many arenas (8 per core), the app's
    start-up hook 2 (the environment variable too), and CVLAB_ARENAS=0 switches the hook off."""
    hook = "import components; print(components._startup.apply()['arenas'])"
    default, _ = _arenas("", {})
    limited, said = _arenas(hook, {})
    assert said == "set to 2" and limited == 2
    assert default > 2
    off, said = _arenas(hook, {memory.ARENAS_ENV: "0"})
    assert said == "off" and off == default
    env, said = _arenas(hook, {"MALLOC_ARENA_MAX": "3"})
    assert said == "environment" and env == 3  # an explicit setting is glibc's, not overridden
    four, said = _arenas(hook, {memory.ARENAS_ENV: "4"})
    assert said == "set to 4" and four == 4


def _fake_glibc(monkeypatch, *, env: dict[str, str] | None = None, mallopt=True, arenas: int | None = 3):
    """limit_arenas() on a fake C library: ``env`` is the environment the process started with."""
    calls = []

    def fake(param, value):
        calls.append((param, value))
        return 1

    monkeypatch.setattr(memory, "_arenas", None)
    monkeypatch.setattr(memory, "_mallopt", lambda: fake if mallopt else None)
    monkeypatch.setattr(memory, "_at_start", lambda name: (env or {}).get(name, ""))
    monkeypatch.setattr(memory, "arena_count", lambda pid="self": arenas)
    monkeypatch.delenv(memory.ARENAS_ENV, raising=False)
    return calls


def test_limit_arenas_runs_once(monkeypatch):
    calls = _fake_glibc(monkeypatch)
    assert memory.limit_arenas() == "set to 2"
    assert memory.limit_arenas() == "set to 2"
    assert calls == [(memory.M_ARENA_MAX, 2)]


@pytest.mark.parametrize("start_env, env, mallopt, arenas, outcome", [
    ({"MALLOC_ARENA_MAX": "4"}, {}, True, 3, "environment"),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}, {}, True, 3, "environment"),
    ({"MALLOC_ARENA_MAX": ""}, {}, True, 3, "set to 2"),  # empty: glibc ignores it too
    # set after start-up (a Cloud secret): glibc never saw it, so the call still applies
    ({}, {"MALLOC_ARENA_MAX": "2"}, True, 3, "set to 2"),
    ({}, {memory.ARENAS_ENV: "0"}, True, 3, "off"),
    ({}, {memory.ARENAS_ENV: "3"}, True, 3, "set to 3"),
    ({}, {}, False, 3, "unsupported"),  # macOS, musl
    ({}, {}, True, None, "set to 2"),  # arenas not countable
    ({}, {}, True, 8, "set to 2"),
    ({}, {}, True, 14, "too late (14 arenas already)"),  # glibc's own ceiling is fixed by now
])
def test_limit_arenas_outcomes(monkeypatch, start_env, env, mallopt, arenas, outcome):
    _fake_glibc(monkeypatch, env=start_env, mallopt=mallopt, arenas=arenas)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert memory.limit_arenas() == outcome


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc arenas")
def test_arena_count_of_a_fresh_interpreter():
    """A single-threaded interpreter has only the main arena; 16 threads alive at once
    (test_limit_arenas_caps_the_arenas_threads_get) more."""
    out = subprocess.run([sys.executable, "-c", "from core.memory import arena_count; print(arena_count())"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize("argv, server", [
    (["/usr/bin/python3", "/app/.venv/bin/streamlit", "run", "Home.py", "--server.port", "8501"], True),
    (["python", "-m", "streamlit", "run", "Home.py"], True),
    (["python", "-m", "pytest", "-q", "tests/test_run.py"], False),
    (["python", "-m", "benchmark", "--part", "app"], False),
    (["python", "-c", "run"], False),
    ([], False),
])
def test_server_argv(argv, server):
    from core.startup import server_argv

    assert (server_argv(argv) == argv) if server else server_argv(argv) is None


def test_startup_warns_a_server_whose_arena_limit_came_too_late(monkeypatch, caplog):
    from core import startup

    for argv, warned in ((["python", "-m", "streamlit", "run", "Home.py"], True), (None, False)):
        monkeypatch.setattr(startup, "_done", None)
        monkeypatch.setattr(memory, "limit_arenas", lambda n=2: "too late (14 arenas already)")
        monkeypatch.setattr(startup, "server_argv", lambda argv_=None, argv=argv: argv)
        caplog.clear()
        assert startup.apply()["arenas"] == "too late (14 arenas already)"
        assert ("MALLOC_ARENA_MAX=2 before the server starts" in caplog.text) == warned


def test_every_page_and_home_import_components_first():
    """The start-up hook lives in components/__init__.py: each app script must import the
    package before anything that could import torch."""
    for script in [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]:
        lines = [ln for ln in script.read_text().splitlines() if ln.startswith(("import ", "from "))]
        own = [ln for ln in lines if ln.split()[1].split(".")[0] in ("components", "core", "models")]
        assert own and own[0].split()[1].split(".")[0] == "components", f"{script.name}: {own[:1]}"
        before = {ln.split()[1].split(".")[0] for ln in lines[:lines.index(own[0])]}
        assert not before & {"torch", "torchvision", "ultralytics", "cv2", "onnxruntime"}, \
            f"{script.name} imports {sorted(before)} before the app's start-up hook"


def test_the_server_process_applies_the_hook():
    """Home's first run in a fresh interpreter (what `streamlit run` does) applied the start-up
    settings, without torch."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(ROOT / 'Home.py')!r}, default_timeout=120).run()\n"
            "assert not at.exception\n"
            "from core import memory\n"
            "print(memory._arenas, 'torch' in sys.modules)\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", memory.ARENAS_ENV)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    said, torch_loaded = out.stdout.strip().rsplit(" ", 1)
    assert said == ("set to 2" if GLIBC else "unsupported") and torch_loaded == "False"


_MMAP_PROBE = r"""
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
from core.memory import fix_mmap_threshold
print(fix_mmap_threshold(), fix_mmap_threshold(), sep="|")
p = libc.malloc(4 << 20); libc.free(p)  # glibc's sliding threshold rises to 4 MiB here
before = libc.mallinfo2().hblks
p = libc.malloc(2 << 20)
print(libc.mallinfo2().hblks - before)  # 1: the 2 MiB block has its own mapping (freed straight to the OS)
libc.free(p)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and mallinfo2")
@pytest.mark.parametrize("setting, outcome, mapped", [("", "set to 1048576", "1"), ("0", "off", "0")])
def test_fixed_mmap_threshold_keeps_large_blocks_out_of_the_arenas(setting, outcome, mapped):
    """Without it, a freed 4 MiB block raises glibc's threshold and the next 2 MiB block comes
    from an arena (where, with 16 arenas, freed blocks pile up); with it, it is mapped."""
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    env["CVLAB_MMAP_THRESHOLD"] = setting
    out = subprocess.run([sys.executable, "-c", _MMAP_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [f"{outcome}|{outcome}", mapped]
