"""benchmark/spread.py's table logic on a fake effect (no training): statistics, margins for
"at least" and "at most" bars, the value a multi-seed test asserts, merging runs per kernel path
and seed, the spread of one seed between kernel paths, and the Markdown."""

from __future__ import annotations

import json
import math

import pytest

from benchmark import spread as sp

GAP = sp.Check("A - B", ">=", 0.05)
CEIL = sp.Check("leak", "<", 0.1)
MEAN2 = sp.Check("A - B", ">", 0.12, seeds=(0, 1))  # a test that asserts the mean of seeds 0 and 1
INFO = sp.Check("side", "~", 0.0)  # printed by the test, not asserted
VALUES = {0: {"A - B": 0.2, "leak": 0.02, "side": -0.5}, 1: {"A - B": 0.1, "leak": 0.05, "side": 0.5},
          2: {"A - B": 0.3, "leak": -0.01, "side": 0.0}}
FAKE = sp.Effect("fake", "tests/test_fake.py::test_it", lambda seed: VALUES[seed], (GAP, CEIL, MEAN2, INFO))
PATH = {"key": "AVX512", "aten": "AVX512", "onednn": "default", "cpu": "Test CPU", "torch": "0", "date": "today"}


def test_stats_min_mean_sd_and_margin_by_hand():
    s = sp.stats([0.2, 0.1, 0.3], GAP)
    assert (s["n"], s["min"], s["max"]) == (3, 0.1, 0.3)
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1)  # sample sd: sqrt(0.02 / 2)
    assert s["margin"] == pytest.approx(0.05) and s["passes"]  # worst seed 0.1 against the bar 0.05
    s = sp.stats([0.02, 0.05, -0.01], CEIL)
    assert s["margin"] == pytest.approx(0.05) and s["passes"]  # "at most" bar: bar - the largest value
    s = sp.stats([0.04, 0.5], GAP)
    assert s["margin"] == pytest.approx(-0.01) and not s["passes"]
    assert sp.stats([0.3], GAP)["sd"] == 0.0
    assert not sp.stats([0.05], sp.Check("x", ">", 0.05))["passes"]  # strict bars are strict


def test_the_tests_value_is_the_mean_over_its_seeds():
    by_seed = {str(s): v for s, v in VALUES.items()}
    assert sp.tested_value(by_seed, GAP) == 0.2  # seed 0 by default
    assert sp.tested_value(by_seed, MEAN2) == pytest.approx(0.15)
    assert sp.tested_value({"0": VALUES[0]}, MEAN2) is None  # seed 1 not measured yet


def test_run_merges_kernel_paths_and_seeds_and_writes_both_files(tmp_path):
    logged = []
    sp.run([FAKE], [0, 1], tmp_path, log=logged.append, path=PATH)
    sp.run([FAKE], [2], tmp_path, log=logged.append, path=PATH)  # another seed adds to the same rows
    doc = json.loads((tmp_path / "spread.json").read_text())
    rec = doc["runs"]["AVX512"]["effects"]["fake"]
    assert sorted(rec["values"]) == ["0", "1", "2"] and rec["test"] == FAKE.test
    assert len(logged) == 3 and "fake seed 1" in logged[1]
    gap, ceil, mean2, info = sp.rows(doc["runs"]["AVX512"]["effects"], {"fake": FAKE.checks})
    assert gap["seeds"] == [0, 1, 2] and gap["values"] == [0.2, 0.1, 0.3]
    assert gap["margin"] == pytest.approx(0.05) and ceil["margin"] == pytest.approx(0.05)
    assert gap["test_value"] == 0.2 and gap["test_passes"]
    # the mean of seeds 0-1 (0.15) passes its bar although seed 1 alone (0.1) is under it
    assert mean2["test_value"] == pytest.approx(0.15) and mean2["test_passes"] and not mean2["passes"]
    assert info["test_passes"]

    other = {**PATH, "key": "AVX2+oneDNN-AVX2", "aten": "AVX2", "onednn": "AVX2"}
    worse = sp.Effect("fake", FAKE.test, lambda seed: {"A - B": 0.01, "leak": 0.2, "side": 0.0}, FAKE.checks)
    doc = sp.run([worse], [0], tmp_path, log=logged.append, path=other)
    assert set(doc["runs"]) == {"AVX512", "AVX2+oneDNN-AVX2"}
    # seed 0 is on both paths: 0.2 and 0.01 -> within-seed sd = |0.2 - 0.01| / sqrt(2)
    sd = sp.sd_between_paths(doc["runs"], "fake", "A - B")
    assert sd == pytest.approx(0.19 / math.sqrt(2))
    assert sp.sd_between_paths({"one": doc["runs"]["AVX512"]}, "fake", "A - B") is None  # one path: unknown
    pooled = {(r["quantity"], r["op"]): r for r in sp.pooled(doc["runs"], {"fake": FAKE.checks})}
    g = pooled[("A - B", ">=")]
    assert g["n"] == 4 and g["min"] == 0.01 and not g["passes"]
    assert g["tests"] == {"AVX2+oneDNN-AVX2": 0.01, "AVX512": 0.2}
    assert g["test_margin"] == pytest.approx(0.01 - 0.05) and g["test_sds"] == pytest.approx(-0.04 / sd)
    assert pooled[("leak", "<")]["test_margin"] == pytest.approx(0.1 - 0.2)
    # the two-seed test is only complete on the first path; its margin is in sd / sqrt(2)
    m2 = pooled[("A - B", ">")]
    assert m2["tests"] == {"AVX512": pytest.approx(0.15)}
    assert m2["test_sds"] == pytest.approx(0.03 / (sd / math.sqrt(2)))

    md = (tmp_path / "spread.md").read_text()
    assert "## Kernel path AVX512" in md and "## Kernel path AVX2+oneDNN-AVX2" in md and "## All kernel paths" in md
    assert ("| fake | A - B | >= 0.05 | 0.200 (seed 0) | 0: 0.200, 1: 0.100, 2: 0.300 | 0.100 | 0.200 | 0.100 "
            "| +0.050 | yes |") in md
    assert "| fake | A - B | > 0.12 | 0.150 (mean of seeds 0-1) |" in md and "| printed |" in md
    assert f"| fake | A - B | >= 0.05 | 4 | 0.010 | 0.153 | 0.125 | -0.040 | {sd:.3f} | 0.010 / 0.200 (seed 0) " \
           f"| -0.040 | -0.3 |" in md
    assert "**NO**" in md


def test_every_effect_names_a_test_and_checks_distinct_quantities():
    names = [e.name for e in sp.EFFECTS]
    assert len(names) == len(set(names)) == 12
    for e in sp.EFFECTS:
        assert e.test.startswith("tests/test_") and "::test_" in e.test
        assert e.checks and len({(c.quantity, c.op, c.seeds) for c in e.checks}) == len(e.checks)
        assert all(c.op in sp.OPS for c in e.checks)
