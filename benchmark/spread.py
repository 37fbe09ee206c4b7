"""How far the tests' live-trained effects move between seeds and CPU kernel paths.

Several tests train a small network in the test and assert an effect against a bar ("early fusion
reaches 0.5", "class weights lift minority recall"). A bar set from one seed on one machine can land
on the wrong side elsewhere: float rounding differs between CPUs (AVX-512 vs AVX2 kernels, Intel vs
AMD) and a training run amplifies it. This runs each test's own recipe (the same pure functions in
core/ the test calls) once per seed and reports, per asserted quantity: the bar, the value the test
computes, the value per seed, min, mean, standard deviation and the margin (worst seed minus the bar;
for "at most" bars, the bar minus the worst).

    python -m benchmark.spread                                   # every effect, seeds 0-4
    python -m benchmark.spread --only fusion imbalance --seeds 0 1 2
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python -m benchmark.spread   # AVX2 kernels

``ATEN_CPU_CAPABILITY`` picks ATen's own kernels (elementwise ops, reductions); convolutions go
through oneDNN, which picks its own ISA (``ONEDNN_MAX_CPU_ISA``): a machine without AVX-512 differs
in both, and here only the second changed any result. Results are merged into ``--out``/spread.json
per kernel path and seed, so runs under other kernels or with other seeds add to the same tables;
spread.md holds one table per kernel path and one over all of them, with the sd of one seed's value
between kernel paths (what rounding alone moves it) and the test's margin in those units: the tests'
bars sit about 3 of them under the test's value on every path measured. No Streamlit: page constants
a test reads from components/ are repeated here (see each entry).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
OPS = {">=": lambda v, b: v >= b, ">": lambda v, b: v > b, "<=": lambda v, b: v <= b, "<": lambda v, b: v < b,
       "~": lambda v, b: True}  # "~": printed by the test, not asserted; its bar is the no-effect value


@dataclass(frozen=True)
class Check:
    """One assertion of the test: ``quantity op bar`` (e.g. "early fusion accuracy" >= 0.5) on the mean of
    the quantity over ``seeds``, the seeds the test runs."""

    quantity: str
    op: str
    bar: float
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Effect:
    name: str
    test: str  # the test it backs (file::function)
    measure: Callable[[int], dict]  # seed -> {quantity: value}
    checks: tuple[Check, ...]


# --- table logic (no training) -------------------------------------------------------------------


def stats(values: list[float], check: Check) -> dict:
    """min / mean / sd (sample, ddof 1) of one quantity over seeds, its margin (worst value vs the
    bar, positive = every value passes) and whether every value passes."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    margin = (min(values) - check.bar) if _upper(check) else (check.bar - max(values))
    return {"n": n, "min": min(values), "max": max(values), "mean": mean, "sd": sd, "margin": margin,
            "passes": all(OPS[check.op](v, check.bar) for v in values)}


def _upper(check: Check) -> bool:
    return check.op in (">=", ">", "~")


def tested_value(by_seed: dict, check: Check) -> float | None:
    """What the test computes: the quantity's mean over the test's seeds (None if one is missing)."""
    vals = [by_seed.get(str(s), {}).get(check.quantity) for s in check.seeds]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


def rows(effects: dict, checks: dict[str, tuple[Check, ...]]) -> list[dict]:
    """One row per (effect, check) from {effect: {"test", "values": {seed: {quantity: value}}}}."""
    out = []
    for name, rec in effects.items():
        for c in checks.get(name, ()):
            seeds = sorted(int(s) for s, v in rec["values"].items() if c.quantity in v)
            if not seeds:
                continue
            vals = [float(rec["values"][str(s)][c.quantity]) for s in seeds]
            t = tested_value(rec["values"], c)
            out.append({"effect": name, "test": rec["test"], "quantity": c.quantity, "op": c.op, "bar": c.bar,
                        "test_seeds": list(c.seeds), "test_value": t,
                        "test_passes": None if t is None else OPS[c.op](t, c.bar),
                        "seeds": seeds, "values": vals, **stats(vals, c)})
    return out


def sd_between_paths(runs: dict, effect: str, quantity: str) -> float | None:
    """How far one seed's value moves between kernel paths: the pooled within-seed sd over every seed
    measured on two paths or more (None if there is none)."""
    by_seed: dict[str, list[float]] = {}
    for run in runs.values():
        for s, v in run["effects"].get(effect, {}).get("values", {}).items():
            if quantity in v:
                by_seed.setdefault(s, []).append(float(v[quantity]))
    groups = [g for g in by_seed.values() if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        return None
    return math.sqrt(sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups) / df)


def pooled(runs: dict, checks: dict[str, tuple[Check, ...]]) -> list[dict]:
    """Rows over every kernel path together: each (path, seed) value is one sample. ``test_sds``: the
    worst path's test value minus the bar, in sd between paths of the test value (sd / sqrt(its seeds))."""
    names = list(dict.fromkeys(n for run in runs.values() for n in run["effects"]))
    out = []
    for name in names:
        recs = {k: run["effects"][name] for k, run in sorted(runs.items()) if name in run["effects"]}
        for c in checks.get(name, ()):
            vals = [float(v[c.quantity]) for r in recs.values() for v in r["values"].values() if c.quantity in v]
            if not vals:
                continue
            tests = {k: tested_value(r["values"], c) for k, r in recs.items()}
            tests = {k: t for k, t in tests.items() if t is not None}
            sdp = sd_between_paths(runs, name, c.quantity)
            worst = (min if _upper(c) else max)(tests.values()) if tests else None
            margin = None if worst is None else (worst - c.bar if _upper(c) else c.bar - worst)
            sds = None if margin is None or not sdp else margin / (sdp / math.sqrt(len(c.seeds)))
            out.append({"effect": name, "test": next(iter(recs.values()))["test"], "quantity": c.quantity,
                        "op": c.op, "bar": c.bar, "test_seeds": list(c.seeds), "tests": tests, "sd_paths": sdp,
                        "test_margin": margin, "test_sds": sds, "values": vals, **stats(vals, c)})
    return out


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _seeds(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {seeds[0]}-{seeds[-1]}"


def markdown(table: list[dict]) -> str:
    """One kernel path: the test's value, every seed, and the spread over seeds."""
    head = ["effect", "quantity", "bar", "test", "per seed", "min", "mean", "sd", "margin", "test passes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        seeds = ", ".join(f"{s}: {_f(v)}" for s, v in zip(r["seeds"], r["values"]))
        lines.append("| " + " | ".join([
            r["effect"], r["quantity"], f"{r['op']} {r['bar']:g}", f"{_f(r['test_value'])} ({_seeds(r['test_seeds'])})",
            seeds, _f(r["min"]), _f(r["mean"]), _f(r["sd"]), f"{r['margin']:+.3f}",
            "printed" if r["op"] == "~" else {None: "-", True: "yes", False: "**NO**"}[r["test_passes"]]]) + " |")
    return "\n".join(lines) + "\n"


def markdown_pooled(table: list[dict]) -> str:
    """Every kernel path: the spread over all (path, seed) runs, how far one seed moves between paths,
    and the test's margin in those units (3 or more: rounding on another CPU is unlikely to cross it)."""
    head = ["effect", "quantity", "bar", "n", "min", "mean", "sd", "margin", "sd between paths",
            "test per path", "test margin", "in sd between paths"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        tests = " / ".join(_f(t) for t in r["tests"].values())
        lines.append("| " + " | ".join([
            r["effect"], r["quantity"], f"{r['op']} {r['bar']:g}", str(r["n"]), _f(r["min"]), _f(r["mean"]),
            _f(r["sd"]), f"{r['margin']:+.3f}", _f(r["sd_paths"]), f"{tests} ({_seeds(r['test_seeds'])})",
            _f(r["test_margin"], "+.3f"), "> 100" if (r["test_sds"] or 0) > 100 else _f(r["test_sds"], ".1f")]) + " |")
    return "\n".join(lines) + "\n"


def report(doc: dict, checks: dict[str, tuple[Check, ...]]) -> str:
    parts = ["# Spread of the live-trained test effects\n\n",
             "test: the value the test asserts (its seeds); margin: the worst seed minus the bar (for <= / < "
             "bars: the bar minus the worst); sd: sample standard deviation over the seeds.\n"]
    for key, run in sorted(doc["runs"].items()):
        parts.append(f"\n## Kernel path {key}\n\n{run['cpu']}; torch {run['torch']}; ATen {run['aten']}, "
                     f"oneDNN max ISA {run['onednn']}; {run['date']}\n\n")
        parts.append(markdown(rows(run["effects"], checks)))
    if len(doc["runs"]) > 1:
        parts.append(f"\n## All kernel paths together ({', '.join(sorted(doc['runs']))})\n\n")
        parts.append(markdown_pooled(pooled(doc["runs"], checks)))
    return "".join(parts)


def kernel_path() -> dict:
    import torch

    from core.devices import cpu_model_name

    aten = torch.backends.cpu.get_cpu_capability()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "default")
    return {"key": aten if onednn == "default" else f"{aten}+oneDNN-{onednn}", "aten": aten, "onednn": onednn,
            "cpu": f"{cpu_model_name()} ({platform.machine()}, {os.cpu_count()} CPUs)",
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}


def run(effects: list[Effect], seeds: list[int], out: Path, *, log: Callable[[str], None] = print,
        path: dict | None = None) -> dict:
    """Measure every effect at every seed, merging into ``out``/spread.json after each one."""
    path = path or kernel_path()
    out.mkdir(parents=True, exist_ok=True)
    file = out / "spread.json"
    doc = json.loads(file.read_text()) if file.is_file() else {"runs": {}}
    this = doc["runs"].setdefault(path["key"], {"effects": {}})
    this.update({k: v for k, v in path.items() if k != "key"})
    checks = {e.name: e.checks for e in effects}
    for e in effects:
        rec = this["effects"].setdefault(e.name, {"values": {}, "seconds": {}})
        rec["test"] = e.test
        for seed in seeds:
            t0 = time.perf_counter()
            values = {k: float(v) for k, v in e.measure(seed).items()}
            rec["values"][str(seed)] = values
            rec["seconds"][str(seed)] = round(time.perf_counter() - t0, 1)
            log(f"{path['key']} {e.name} seed {seed} ({rec['seconds'][str(seed)]:.0f} s): "
                + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
            file.write_text(json.dumps(doc, indent=1))
    all_checks = {**{x.name: x.checks for x in EFFECTS}, **checks}
    (out / "spread.md").write_text(report(doc, all_checks))
    return doc


# --- the effects: each test's own recipe ---------------------------------------------------------
# Each measure returns the quantities its test asserts (and a few it prints); the checks below carry
# the test's bars. Keep them in step with the tests.


def _threads1():
    from models.shapes_cnn import torch_threads

    return torch_threads(1)


def _fusion(seed: int) -> dict:
    from core import fusion as fu

    r = fu.train(n_train=1500, epochs=8, seed=seed)
    acc, y = r["accuracy"], r["y_test"]
    out = {"early fusion accuracy": acc["early fusion"], "intermediate fusion accuracy": acc["intermediate fusion"],
           "max abs(acc - 1/3) of image, word, late": max(abs(acc[m] - fu.CHANCE)
                                                        for m in ("image only", "word only", "late fusion")),
           "encoder accuracy": r["encoder_accuracy"]}
    for m in ("early fusion", "intermediate fusion"):
        half, gone = (fu.dropout_scores(r["logits"][m], y, p, "image")["accuracy"] for p in (0.5, 1.0))
        out[f"{m}: min(full - half, half - gone) image dropout"] = min(acc[m] - half, half - gone)
    return out


IMB = dict(n_train=1000, ratio=10, minority=3, epochs=6)  # tests/test_imbalance.py SMALL: the page's defaults


def _imbalance(seed: int) -> dict:
    from core import imbalance as im

    data = im.imbalanced_data(n_train=IMB["n_train"], ratio=IMB["ratio"], minority=IMB["minority"], seed=seed)
    comp = im.compare(data, methods=("plain CE", "class-weighted CE"), epochs=IMB["epochs"], seed=seed)
    y, m = comp["y_test"], IMB["minority"]
    rec = {k: im.scores(y, im.predict(r["probs"]))["recall"][m] for k, r in comp["methods"].items()}
    summary = {r["method"]: r for r in im.summary_rows(comp, im.prior(IMB["ratio"], m))}["plain CE"]
    low = im.scores(y, im.predict(comp["methods"]["plain CE"]["probs"], m, 0.1))["recall"][m]
    return {"class-weighted - plain CE minority recall": rec["class-weighted CE"] - rec["plain CE"],
            "plain CE: accuracy at mix - balanced accuracy": summary["accuracy_at_training_mix"]
            - summary["balanced_accuracy"],
            "plain CE: recall at t 0.1 - at argmax": low - rec["plain CE"]}


def _augment(seed: int) -> dict:
    from core import augment as aug

    r = aug.compare(n_train=aug.TRAIN_N_DEFAULT, epochs=aug.TRAIN_EPOCHS_DEFAULT, seed=seed, augs=aug.TRAIN_DEFAULT)
    f = r["final"]
    last = [x for x in r["curve"] if x["model"] == "without augmentation"][-1]
    return {"with - without augmentation": f["with augmentation"] - f["without augmentation"],
            "without augmentation accuracy": f["without augmentation"], "without: final train loss": last["loss"]}


def _selfsup(seed: int) -> dict:
    from skimage import data as skdata

    from core import selfsup as ss
    from core.shapes import make_classification_set

    r = ss.run(ss.Recipe(probe_each_epoch=False, seed=seed))
    tr, rnd = r["trained"]["probe_accuracy"], r["random"]["probe_accuracy"]
    crops, _ = make_classification_set(5, seed=ss.TEST_SEED + 999, background="plain")
    images = [skdata.astronaut()[::2, ::2]] + list(crops)
    before = ss.view_matrix(ss.make_encoder(seed)[0].eval(), images, 0)
    after = ss.view_matrix(ss.encoder_from_state(r["state_dict"]), images, 0)
    return {"probe: trained - random encoder": tr - rnd, "probe: trained - chance": tr - r["chance"],
            "negative cosine: before - after": before["negative_mean"] - after["negative_mean"]}


KD_CROPS = 300  # tests/test_distill.py TRAIN_CROPS; the rest is the page's kd.Recipe()


def _distill(seed: int) -> dict:
    from core import distill as kd
    from models.shapes_cnn import load_shapes_cnn

    teacher = load_shapes_cnn()
    logits = lambda x: kd.teacher_logits(teacher, x)  # noqa: E731
    r = kd.compare(kd.Recipe(n_train=KD_CROPS, seed=seed), logits)
    fk, fp = r["final"]["KD student"], r["final"]["plain student"]
    page = kd.compare(kd.Recipe(seed=seed), logits)["final"]  # the page's default, 600 crops: not asserted
    return {"KD - plain student": fk - fp, "min(KD, plain student)": min(fk, fp),
            "teacher - KD student": r["teacher_accuracy"] - fk,
            "KD - plain student, page's 600 crops": page["KD student"] - page["plain student"]}


def _transfer(seed: int) -> dict:
    from core import transfer as tl
    from models.shapes_pretext import load_shapes_pretext

    backbone = load_shapes_pretext()
    data = tl.target_data(max_shots=5, n_test=150, seed=seed)
    x, y = data.subset(5)
    runs = {r: tl.train_regime(r, backbone, x, y, data.x_test, data.y_test, steps=40, seed=seed) for r in tl.REGIMES}
    acc = {r: v["accuracy"] for r, v in runs.items()}
    return {"frozen accuracy": acc["frozen"], "frozen - scratch": acc["frozen"] - acc["scratch"],
            "finetune - scratch": acc["finetune"] - acc["scratch"],
            "frozen train accuracy": runs["frozen"]["train_accuracy"]}


ENS = dict(members=3, n_train=800, epochs=5)  # tests/test_ensembles.py RECIPE


def _ensembles(seed: int) -> dict:
    from core import ensembles as E

    t = E.train_ensemble(E.Recipe(seed=seed, **ENS))
    s = E.summary(t["probs"], t["y"])
    split = E.agreement_split(t["probs"], t["y"])
    return {"soft average - mean member": s["soft_average"] - s["mean_member"],
            "majority vote - mean member": s["majority_vote"] - s["mean_member"],
            "soft average - best member": s["soft_average"] - s["best_member"],
            "mean member NLL - ensemble NLL": s["mean_member_nll"] - s["ensemble_nll"],
            "mean member confidence - ensemble's": s["mean_member_confidence"] - s["ensemble_confidence"],
            "error split - error unanimous": split["error_split"] - split["error_unanimous"],
            "min(unanimous, split) crops": min(split["unanimous"], split["split"])}


def _attention(seed: int) -> dict:
    import numpy as np

    from core import attention as att
    from core.shapes import make_scene

    r = att.compare(kind="cbam", n_train=800, n_test=300, epochs=5, seed=seed)
    fp, fa = r["final"]["plain"], r["final"]["cbam"]
    nets = {"trained": att.load_net("cbam", r["state"]["cbam"]), "untrained": att.make_net("cbam", seed=seed).eval()}
    maps = {k: [] for k in nets}
    wins = 0
    with _threads1():
        for s in range(20):
            scene = make_scene(1000 + s, size=64, n_shapes=(1, 1), min_size=0.45, max_size=0.8)
            for k, net in nets.items():
                gates = att.explain(net, scene.image)["gates"]
                m4 = gates["block4 spatial"]
                maps[k].append((float(m4.std()), abs(np.subtract(*att.mass_inside(m4, scene.masks[0])))))
                if k == "trained":
                    inside, outside = att.mass_inside(gates["block2 spatial"], scene.masks[0])
                    wins += inside > outside
    mean = lambda k, i: float(np.mean([v[i] for v in maps[k]]))  # noqa: E731
    return {"plain accuracy": fp, "CBAM accuracy": fa, "CBAM - plain": fa - fp,
            "block-4 map sd over the crop, trained": mean("trained", 0),
            "block-4 map abs(shape - background), trained": mean("trained", 1),
            "block-4 map sd over the crop, untrained": mean("untrained", 0),
            "block-2 map: crops higher on the shape (of 20)": wins}


def _multilabel(seed: int) -> dict:
    from core import multilabel as ml

    from models.shapes_cnn import pretrained_backbone

    r = ml.compare(backbone=pretrained_backbone(), n_train=400, n_test=150, epochs=6, seed=seed)
    board = ml.scoreboard(r, [0.5] * 6)
    sig, soft = board["sigmoid"]["micro"], board["softmax"]["micro"]
    every = ml.metrics(r["targets"], r["targets"] >= 0)["micro"]["f1"]  # says "yes" to every class: no learning
    return {"sigmoid micro-F1": sig["f1"], "sigmoid - every-class micro-F1": sig["f1"] - every,
            "sigmoid - softmax micro-F1": sig["f1"] - soft["f1"],
            "sigmoid - softmax micro recall": sig["recall"] - soft["recall"]}


def _noise(seed: int) -> dict:
    from core import noise as N
    from core.livetrain import shapes_data

    data = shapes_data(n_train=N.LABEL_TRAIN, n_test=N.LABEL_TEST, seed=seed)
    r = {name: N.run_experiment(data, pct, loss, epochs=N.LABEL_EPOCHS, seed=seed)
         for name, (pct, loss) in {"clean": (0, "ce"), "ce": (20, "ce"), "sce": (20, "sce")}.items()}
    clean, ce, sce = (r[k].test_accuracy for k in ("clean", "ce", "sce"))
    return {"clean - CE (20 % flipped)": clean - ce, "CE memorised": r["ce"].memorised,
            "CE - SCE memorised": r["ce"].memorised - r["sce"].memorised, "SCE - CE": sce - ce,
            "SCE - CE corrected": r["sce"].corrected - r["ce"].corrected}


def _missing(seed: int) -> dict:
    from core import missing as mi

    pair = mi.train_pair(mi.ErasingSettings(kinds=("blocks", "stripes"), fractions=(0.0, 0.2), seed=seed))
    res = mi.evaluate_pair(pair, "zeros")
    a = lambda m, kind, f: res.accuracy(m, kind, f)  # noqa: E731
    drop = {m: a(m, "blocks", 0.0) - a(m, "blocks", 0.2) for m in (mi.PLAIN, mi.ERASING)}
    return {"plain clean accuracy": a(mi.PLAIN, "blocks", 0.0), "erasing clean accuracy": a(mi.ERASING, "blocks", 0.0),
            "erasing - plain, 20 % stripes": a(mi.ERASING, "stripes", 0.2) - a(mi.PLAIN, "stripes", 0.2),
            "plain drop - erasing drop": drop[mi.PLAIN] - drop[mi.ERASING],
            "erasing - plain, 20 % blocks": a(mi.ERASING, "blocks", 0.2) - a(mi.PLAIN, "blocks", 0.2)}


# components.adversarial's N_TRAIN, N_TEST, EPOCHS, EVAL_STEPS (it imports Streamlit)
ADV = dict(n_train=1500, n_test=200, epochs=6, eval_steps=7)


def _adversarial(seed: int) -> dict:
    from core import adversarial as adv

    with _threads1():  # the test module's autouse fixture
        r = adv.compare_training(4, "fgsm", 0.5, seed, eval_eps=(0, 2), **ADV)
    normal, robust = r["curves"]["normal"], r["curves"]["adversarial"]
    return {"normal clean accuracy": normal[0], "adversarial clean accuracy": robust[0],
            "robust - normal under PGD 2/255": robust[1] - normal[1], "normal under PGD 2/255": normal[1]}


T = "tests/test_"
NOT_ASSERTED = "~"  # a quantity the test prints but does not assert (its "bar": the no-effect value)
EFFECTS = (
    Effect("fusion", T + "fusion.py::test_single_modalities_and_late_fusion_stay_at_chance_while_fusion_learns",
           _fusion,
           (Check("early fusion accuracy", ">=", 0.50), Check("intermediate fusion accuracy", ">=", 0.90),
            Check("max abs(acc - 1/3) of image, word, late", "<=", 0.08), Check("encoder accuracy", ">=", 0.75),
            Check("early fusion: min(full - half, half - gone) image dropout", ">", 0.0),
            Check("intermediate fusion: min(full - half, half - gone) image dropout", ">", 0.0))),
    Effect("imbalance", T + "imbalance.py::test_rebalancing_lifts_minority_recall", _imbalance,
           (Check("class-weighted - plain CE minority recall", ">=", 0.06, seeds=(0, 1, 2, 3, 4)),
            Check("plain CE: accuracy at mix - balanced accuracy", ">", 0.05),
            Check("plain CE: recall at t 0.1 - at argmax", ">", 0.0))),
    Effect("augment", T + "augment.py::test_with_augmentation_beats_without_on_few_crops", _augment,
           (Check("with - without augmentation", ">=", 0.015), Check("without augmentation accuracy", ">", 1 / 6 + 0.1),
            Check("without: final train loss", "<", 0.3))),
    Effect("selfsup", T + "selfsup.py::test_contrastive_encoder_beats_its_random_weights_and_chance", _selfsup,
           (Check("probe: trained - random encoder", ">=", 0.045), Check("probe: trained - chance", ">=", 0.12),
            Check("negative cosine: before - after", ">", 0.1))),
    Effect("distill", T + "distill.py::test_kd_student_beats_the_plain_one_and_both_beat_chance", _distill,
           (Check("KD - plain student", ">=", 0.05, seeds=(0, 1)), Check("min(KD, plain student)", ">=", 0.45),
            Check("min(KD, plain student)", ">=", 0.45, seeds=(1,)), Check("teacher - KD student", ">", 0.0),
            Check("teacher - KD student", ">", 0.0, seeds=(1,)),
            Check("KD - plain student, page's 600 crops", NOT_ASSERTED, 0.0))),
    Effect("transfer", T + "transfer.py::test_frozen_backbone_beats_scratch_and_chance_with_five_examples", _transfer,
           (Check("frozen accuracy", ">=", 0.7), Check("frozen - scratch", ">=", 0.25),
            Check("finetune - scratch", ">=", 0.2), Check("frozen train accuracy", ">=", 0.8))),
    Effect("ensembles", T + "ensembles.py::test_averaged_ensemble_beats_the_mean_member (+ disagreement)", _ensembles,
           (Check("soft average - mean member", ">", 0.0), Check("majority vote - mean member", ">", 0.0),
            Check("soft average - best member", ">=", -0.08), Check("mean member NLL - ensemble NLL", ">", 0.0),
            Check("mean member confidence - ensemble's", ">", 0.0),
            Check("error split - error unanimous", ">=", 0.08), Check("min(unanimous, split) crops", ">=", 20))),
    Effect("attention", T + "attention.py::test_both_nets_learn_and_the_gap_is_what_was_measured (+ spatial map)",
           _attention,
           (Check("plain accuracy", ">", 0.5), Check("CBAM accuracy", ">", 0.35), Check("CBAM accuracy", "<", 0.97),
            Check("CBAM - plain", "<", 0.35), Check("block-4 map sd over the crop, trained", ">=", 0.15),
            Check("block-4 map abs(shape - background), trained", ">=", 0.045),
            Check("block-4 map sd over the crop, untrained", "<", 0.01),
            Check("block-2 map: crops higher on the shape (of 20)", NOT_ASSERTED, 10))),
    Effect("multilabel", T + "multilabel.py::test_sigmoid_beats_softmax_on_held_out_scenes", _multilabel,
           (Check("sigmoid micro-F1", ">", 0.55), Check("sigmoid - every-class micro-F1", ">", 0.08),
            Check("sigmoid - softmax micro-F1", ">", 0.2), Check("sigmoid - softmax micro recall", ">", 0.0))),
    Effect("noise", T + "noise.py::test_label_noise_hurts_plain_ce (+ memorised)", _noise,
           (Check("clean - CE (20 % flipped)", ">=", 0.15), Check("CE memorised", ">=", 0.9),
            Check("CE - SCE memorised", ">", 0.0), Check("SCE - CE", NOT_ASSERTED, 0.0),
            Check("SCE - CE corrected", NOT_ASSERTED, 0.0))),
    Effect("missing", T + "missing.py::test_random_erasing_degrades_less_under_block_dropout", _missing,
           (Check("plain clean accuracy", ">", 0.9), Check("erasing clean accuracy", ">", 0.55),
            Check("erasing - plain, 20 % stripes", ">", 0.1), Check("plain drop - erasing drop", ">", 0.15),
            Check("erasing - plain, 20 % blocks", NOT_ASSERTED, 0.0))),
    Effect("adversarial", T + "adversarial.py::test_adversarial_training_buys_robust_accuracy", _adversarial,
           (Check("normal clean accuracy", ">=", 0.85), Check("adversarial clean accuracy", ">=", 0.7),
            Check("robust - normal under PGD 2/255", ">=", 0.15), Check("normal under PGD 2/255", "<=", 0.3))),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.spread", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--only", nargs="+", choices=[e.name for e in EFFECTS], help="these effects only")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results", help="folder for spread.json / spread.md")
    a = p.parse_args(argv)
    effects = [e for e in EFFECTS if not a.only or e.name in a.only]
    doc = run(effects, a.seeds, a.out)
    path = kernel_path()
    print(f"\n{path['cpu']}; ATen {path['aten']}, oneDNN max ISA {path['onednn']}\n")
    print(markdown(rows(doc["runs"][path["key"]]["effects"], {e.name: e.checks for e in EFFECTS})))
    print(f"Written: {a.out / 'spread.json'}, {a.out / 'spread.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
