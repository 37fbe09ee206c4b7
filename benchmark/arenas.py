"""Server memory growth over tours by new sessions, with and without the app's malloc-arena limit.

    python -m benchmark.arenas                      # both conditions, 3 tours of Home + pages 01-11
    python -m benchmark.arenas --tours 3 --pages 11 --repeats 3 --conditions limit default env

Each condition starts its own ``streamlit run Home.py`` WITHOUT ``MALLOC_ARENA_MAX`` in its
environment (as on Streamlit Community Cloud), so what differs is only what the app does at
start-up (``core.memory.limit_arenas``, switched by ``CVLAB_ARENAS``):

* ``limit``: the app's own ``mallopt(M_ARENA_MAX, 2)`` on the first import of its code;
* ``default``: ``CVLAB_ARENAS=0``, glibc's default (up to 8 arenas per core);
* ``env``: ``MALLOC_ARENA_MAX=2`` set before start-up (``scripts/run.sh``, the Dockerfile).

A tour opens Home in a new browser session (a new Streamlit session, so new script-run
threads) and each page from the sidebar, moving its main slider ``repeats`` times, as the
benchmark's app part does. After each tour the server's RSS is read, and its malloc arenas
are counted (``core.memory.arena_count``).
Writes ``bench-results/arenas.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark import app, driver
from core.memory import arena_count

CONDITIONS = {
    # empty MALLOC_ARENA_MAX: glibc ignores it; the app's limit_arenas() applies (too late in a
    # server), then its fixed mmap threshold (core.memory.fix_mmap_threshold)
    "limit": {"MALLOC_ARENA_MAX": ""},
    "limit-only": {"MALLOC_ARENA_MAX": "", "CVLAB_MMAP_THRESHOLD": "0"},
    "default": {"MALLOC_ARENA_MAX": "", "CVLAB_ARENAS": "0", "CVLAB_MMAP_THRESHOLD": "0"},
    "env": {"MALLOC_ARENA_MAX": "2"},
}


def tours(condition: str, *, n_tours: int, pages: list[Path], repeats: int, out_dir: Path,
          env: dict[str, str], log=print) -> dict:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = driver.launch_chromium(pw)
        try:
            with driver.AppServer(out_dir / f"arenas-{condition}.log", env={**env, **CONDITIONS[condition]}) as server:
                for tour in range(n_tours):
                    page = driver.new_page(browser)
                    driver.open_url(page, server.base, timeout=app.COLD_TIMEOUT_S)
                    app._home_title(page)
                    for script in pages:
                        link, _ = driver.nav_link(page, script)
                        driver.rerun(page, link.click, timeout=app.COLD_TIMEOUT_S)
                        app._moves(page, repeats)
                    page.context.close()
                    mem = server.memory_mb()
                    rows.append({"rss_mb": round(mem["rss"], 1), "peak_mb": round(mem["peak"], 1),
                                 "arenas": arena_count(server.proc.pid)})
                    log(f"  {condition}: after tour {tour + 1}: RSS {mem['rss']:.0f} MB (peak {mem['peak']:.0f}), "
                        f"{rows[-1]['arenas']} malloc arenas")
        finally:
            browser.close()
    first, last = rows[0]["rss_mb"], rows[-1]["rss_mb"]
    return {"condition": condition, "env": CONDITIONS[condition], "tours": rows,
            "growth_mb": round(last - first, 1), "growth_pct": round((last - first) / first * 100, 2),
            "per_tour_mb": round((last - first) / max(1, len(rows) - 1), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.arenas", description=__doc__.splitlines()[0])
    parser.add_argument("--tours", type=int, default=3)
    parser.add_argument("--pages", type=int, default=11, help="the first N pages of the sidebar (default 11)")
    parser.add_argument("--repeats", type=int, default=3, help="slider moves per page visit")
    parser.add_argument("--conditions", nargs="+", choices=tuple(CONDITIONS), default=["limit", "default"])
    parser.add_argument("--out", type=Path, default=driver.ROOT / "bench-results")
    args = parser.parse_args(argv)
    from models import registry

    env = {"CVLAB_WEIGHTS": str(registry.weights_dir()), "CVLAB_OFFLINE": "1"}
    pages = driver.page_files()[: args.pages]
    print(f"{args.tours} tours of Home + {len(pages)} pages ({pages[0].name} … {pages[-1].name}), "
          f"{args.repeats} slider moves each")
    results = [tours(c, n_tours=args.tours, pages=pages, repeats=args.repeats, out_dir=args.out, env=env)
               for c in args.conditions]
    for r in results:
        print(f"{r['condition']:>8}: RSS " + " → ".join(f"{t['rss_mb']:.0f}" for t in r["tours"])
              + f" MB; growth {r['growth_mb']:+.0f} MB ({r['growth_pct']:+.1f} %), {r['per_tour_mb']:+.0f} MB a tour; "
              + "malloc arenas " + " → ".join(str(t["arenas"]) for t in r["tours"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "arenas.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
