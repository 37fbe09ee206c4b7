"""Noise & outliers (Q39): core.noise's measures and corruptions, the behaviour the page
claims (median beats salt-and-pepper, confidence falls with noise, label noise hurts plain CE
and a robust loss memorises fewer wrong labels), and the page itself (offline, through AppTest)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import noise as N

RNG = np.random.default_rng(123)
PHOTO = RNG.integers(20, 236, (48, 64, 3), dtype=np.uint8)  # no pure black/white pixels
GREY = np.full((40, 50, 3), 128, np.uint8)


def _smooth_image(size: int = 96) -> np.ndarray:
    """A smooth colour image (gradients + a disc): what denoisers are meant to preserve."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([60 + 120 * xx, 50 + 100 * yy, 180 - 80 * xx * yy], axis=-1)
    img[(xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.08] = (200, 60, 40)
    return img.round().astype(np.uint8)


# --- PSNR ---------------------------------------------------------------------------


@pytest.mark.parametrize("offset, expected", [
    (1, 20 * math.log10(255)),          # MSE 1 -> 48.13 dB
    (5, 20 * math.log10(255 / 5)),      # MSE 25 -> 34.15 dB
    (16, 20 * math.log10(255 / 16)),    # MSE 256 -> 24.05 dB
])
def test_psnr_of_a_constant_offset(offset, expected):
    shifted = (GREY.astype(int) + offset).astype(np.uint8)
    assert N.psnr(GREY, shifted) == pytest.approx(expected, abs=1e-9)
    assert N.psnr(shifted, GREY) == pytest.approx(expected, abs=1e-9)  # symmetric


@pytest.mark.parametrize("image", [GREY, PHOTO, np.zeros((5, 7, 3), np.uint8)])
def test_psnr_of_identical_images_is_infinite(image):
    assert N.psnr(image, image.copy()) == math.inf


def test_psnr_refuses_different_shapes():
    with pytest.raises(ValueError):
        N.psnr(GREY, PHOTO)


# --- corruptions --------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 0.013, 0.1, 0.25, 0.5, 1.0])
def test_salt_and_pepper_changes_exactly_the_requested_fraction(fraction):
    noisy, mask = N.salt_and_pepper(PHOTO, fraction, seed=4)
    n_pixels = PHOTO.shape[0] * PHOTO.shape[1]
    changed = np.any(noisy != PHOTO, axis=-1)
    assert changed.sum() == mask.sum() == round(fraction * n_pixels)
    assert np.array_equal(changed, mask)
    hit = noisy[mask]
    assert np.all((hit == 0).all(-1) | (hit == 255).all(-1))  # whole pixels go black or white
    if mask.sum() > 100:
        assert 0.35 < np.mean((hit == 255).all(-1)) < 0.65  # about half salt, half pepper


@pytest.mark.parametrize("kind, strength", [("gaussian", 25.0), ("salt_pepper", 0.1), ("speckle", 0.3),
                                            ("jpeg", 20), ("blur", 1.5)])
def test_corruptions_are_seeded_and_leave_the_input_alone(kind, strength):
    before = PHOTO.copy()
    a = N.corrupt(PHOTO, kind, strength, seed=7)
    b = N.corrupt(PHOTO, kind, strength, seed=7)
    assert np.array_equal(a, b), "same seed, same pixels"
    assert np.array_equal(PHOTO, before), "the input is never modified"
    assert a.shape == PHOTO.shape and a.dtype == np.uint8
    assert not np.array_equal(a, PHOTO)
    if kind in ("gaussian", "salt_pepper", "speckle"):
        assert not np.array_equal(a, N.corrupt(PHOTO, kind, strength, seed=8)), "another seed, other noise"


@pytest.mark.parametrize("kind, zero", [("gaussian", 0.0), ("salt_pepper", 0.0), ("speckle", 0.0), ("blur", 0.0)])
def test_zero_strength_is_the_identity(kind, zero):
    assert np.array_equal(N.corrupt(PHOTO, kind, zero, seed=1), PHOTO)


def test_gaussian_noise_has_the_requested_sigma():
    noisy = N.gaussian_noise(GREY, 20.0, seed=0)  # grey 128: clipping is negligible at 20
    assert np.std(noisy.astype(float) - 128) == pytest.approx(20.0, rel=0.03)
    assert N.noise_sigma(noisy) == pytest.approx(20.0, rel=0.1)  # the denoisers' estimate


@pytest.mark.parametrize("sample", ["astronaut", "coffee", "chelsea"])
def test_jpeg_quality_100_is_close_and_lower_quality_is_worse(sample):
    from core.imageio import fit_long_side
    from core.images import load_sample

    img = fit_long_side(load_sample(sample).work, 320)
    scores = [N.psnr(img, N.jpeg(img, q)) for q in (100, 50, 10, 2)]
    # quality 100 still subsamples colour (4:2:0, libjpeg's default), so not lossless, but close
    assert scores[0] > 38, scores
    assert scores == sorted(scores, reverse=True), scores


def test_stronger_noise_means_lower_psnr():
    img = _smooth_image()
    for kind, spec in N.NOISE_KINDS.items():
        levels = [s for s in spec.sweep if s != (100 if spec.stronger_is_lower else 0)][:4]
        scores = [N.psnr(img, N.corrupt(img, kind, s, seed=0)) for s in levels]
        assert scores == sorted(scores, reverse=True), (kind, levels, scores)


# --- denoisers ----------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2, 0.3])
def test_median_filter_repairs_salt_and_pepper_and_beats_a_gaussian_blur(fraction):
    img = _smooth_image()
    noisy, _ = N.salt_and_pepper(img, fraction, seed=2)
    median = N.psnr(img, N.denoise(noisy, "median", salt_fraction=fraction))
    blurred = N.psnr(img, N.gaussian_blur(noisy, 1.0))
    assert median > N.psnr(img, noisy) + 8, (median, N.psnr(img, noisy))
    assert median > blurred + 3, (median, blurred)


@pytest.mark.parametrize("method", list(N.DENOISERS))
def test_every_denoiser_improves_gaussian_noise(method):
    img = _smooth_image()
    noisy = N.gaussian_noise(img, 25.0, seed=3)
    assert N.psnr(img, N.denoise(noisy, method)) > N.psnr(img, noisy) + 3


def test_compare_scores_every_version_against_the_clean_image():
    img = _smooth_image()
    calls = []

    def probs(batch):
        calls.append(len(batch))
        # a fake classifier: class 0's probability is the image's mean brightness / 255
        m = batch.reshape(len(batch), -1).mean(1) / 255.0
        return np.stack([m, 1 - m], axis=1)

    comp = N.compare(img, "salt_pepper", 0.2, probs=probs, seed=5)
    assert list(comp.variants) == ["clean", "noisy", "median", "bilateral", "nlmeans"]
    assert calls == [5]  # one batch
    assert comp.variants["clean"].psnr == math.inf
    assert np.array_equal(comp.variants["noisy"].image, N.salt_and_pepper(img, 0.2, seed=5)[0])
    for v in comp.variants.values():
        assert v.psnr == N.psnr(img, v.image)
        assert v.confidence == pytest.approx(probs(v.image[None])[0, comp.class_index])
    assert comp.table()["psnr_db"][0] is None


# --- behaviour with the trained shapes CNN -------------------------------------------


@pytest.fixture(scope="module")
def shapes_clf(trained_shapes_cnn):
    from core.classifier import Classifier

    return Classifier.shapes(trained_shapes_cnn)


def test_confidence_in_the_true_class_falls_as_gaussian_noise_grows(shapes_clf):
    """Averaged over 24 synthetic shapes (seeded noise): the mean probability of the true class
    falls at every step of sigma 0 -> 5 -> 10 -> 20 -> 40, from >= 0.8 on clean images to
    <= 0.35 at sigma 40 (chance is 1/6)."""
    from core.classifier import shape_sample
    from models.shapes_cnn import torch_threads

    samples = [shape_sample(2000 + i) for i in range(24)]
    labels = np.array([s.label for s in samples])
    means = []
    with torch_threads(1):
        for sigma in (0, 5, 10, 20, 40):
            batch = np.stack([N.gaussian_noise(s.image, sigma, seed=i) for i, s in enumerate(samples)])
            means.append(float(shapes_clf.probs(batch)[np.arange(len(samples)), labels].mean()))
    print("mean P(true) at sigma 0, 5, 10, 20, 40:", [round(m, 3) for m in means])
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[0] >= 0.8 and means[-1] <= 0.35, means


# --- label noise: the page's experiment at its own settings ----------------------------

LABEL_PCT = 20  # the page's default; seed 0 (data, flips, initial weights and batch order)
# Float rounding differs between CPUs and the trained models with it. `python -m benchmark.spread --only
# noise` (2-core AMD EPYC, seeds 0-9, AVX-512 kernels and AVX2 kernels: ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2), seed 0 on the two paths / sd of one seed between them / seeds 0-9 (20 runs):
#   clean-label run minus CE            0.317 / 0.285, sd 0.032; 0.167-0.353
#   CE: flipped crops memorised         1.000 / 1.000, sd 0.030; 0.70-1.00
#   CE minus SCE memorised              0.167 / 0.133, sd 0.050; 0.075-0.37, above 0 in 20 of 20 runs
#   SCE minus CE clean test accuracy    0.090 / 0.025, sd 0.037; -0.027 to +0.11, mean +0.047
#   SCE minus CE flipped crops corrected 0.100 / 0.067, sd 0.048; 0.05-0.26
# A bar sits at or under seed 0's lower value minus about 3 sd. SCE's edge in accuracy and in corrected
# crops is real on average but one seed's sign is within rounding's reach (0.7 and 1.4 sd at seed 0),
# so those two are printed, not asserted.


@pytest.fixture(scope="module")
def label_runs():
    """The three models the page trains by default (600 crops x 18 epochs each, ~15 s per model
    on one idle core): clean labels + CE, 20 % flipped + CE, 20 % flipped + symmetric CE."""
    from core.livetrain import shapes_data

    data = shapes_data(n_train=N.LABEL_TRAIN, n_test=N.LABEL_TEST, seed=0)
    return {name: N.run_experiment(data, pct, loss, epochs=N.LABEL_EPOCHS, seed=0)
            for name, (pct, loss) in {"clean": (0, "ce"), "ce": (LABEL_PCT, "ce"), "sce": (LABEL_PCT, "sce")}.items()}


@pytest.mark.slow
def test_flipped_labels_are_recorded_exactly(label_runs):
    r = label_runs["ce"]
    assert len(r.flipped) == round(LABEL_PCT / 100 * N.LABEL_TRAIN)
    assert np.all(r.given != r.true)
    assert np.array_equal(r.flipped, label_runs["sce"].flipped)  # same flips for both losses
    assert len(label_runs["clean"].flipped) == 0 and len(r.history) == N.LABEL_EPOCHS


@pytest.mark.slow
def test_label_noise_hurts_plain_ce(label_runs):
    """At 20 % flipped labels, seed 0: plain CE ends >= 15 points below the clean-label run (its
    spread: above); symmetric CE's final clean test accuracy is printed next to it."""
    clean, ce, sce = (label_runs[k].test_accuracy for k in ("clean", "ce", "sce"))
    print(f"clean test accuracy: clean labels {clean:.3f}, CE {ce:.3f}, SCE {sce:.3f}")
    assert ce <= clean - 0.15, (clean, ce)


@pytest.mark.slow
def test_plain_ce_memorises_the_wrong_labels_and_the_robust_loss_fewer(label_runs):
    ce, sce = label_runs["ce"], label_runs["sce"]
    print(f"flipped crops predicted with their wrong label: CE {ce.memorised:.2f}, SCE {sce.memorised:.2f}; "
          f"with their true class: CE {ce.corrected:.2f}, SCE {sce.corrected:.2f}")
    assert ce.memorised >= 0.9, ce.memorised  # it learned almost every wrong label by heart
    # fewer for SCE (seed 0's lower gap 0.133 is 2.7 sd of the kernel-path spread above 0)
    assert sce.memorised < ce.memorised, (sce.memorised, ce.memorised)


# --- the page (AppTest) ------------------------------------------------------

PAGE = "pages/09_Noise_and_outliers.py"


def _page(**query):
    """A fresh session on this page (opened through Home, like a shared link): tests.test_pages._page."""
    from tests.test_pages import _page as open_page

    return open_page(PAGE, **query)


def _metrics(at) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def test_page_on_a_synthetic_shape_shows_psnr_and_confidence_of_every_version(trained_models):
    """The sidebar's shapes choice (``?clf=shapes-cnn``); the photo path is in test_photo_robustness.py."""
    from core.classifier import shape_sample
    from tests.test_pages import _captions

    at = _page(clf="shapes-cnn", shape="3", kind="salt_pepper", salt_pepper="0.1", seed="2")
    assert not at.exception, [e.value for e in at.exception]
    assert "🧠 Model: **Shapes CNN" in _captions(at) and "the true class" in _captions(at)
    psnr = _metrics(at)["PSNR"]
    assert len(psnr) == 5 and psnr[0].startswith("∞")
    # the numbers on the page are core.noise's on the same synthetic image, noise and seed
    clean = shape_sample(3).image
    noisy = N.salt_and_pepper(clean, 0.1, seed=2)[0]
    assert psnr[1] == f"{N.psnr(clean, noisy):.1f} dB"
    assert psnr[2] == f"{N.psnr(clean, N.denoise(noisy, 'median', salt_fraction=0.1)):.1f} dB"
    values = [float(p.split()[0]) for p in psnr[1:]]
    assert values[1] == max(values), "the median filter is the best repair of salt-and-pepper"
    assert [b.label for b in at.button] == ["Train the models"]  # nothing trains without a click
    # the first slider in the main area is the strength; moving it keeps the page whole
    at.slider[0].set_value(0.3).run()
    assert not at.exception and at.query_params["salt_pepper"] in ("0.3", ["0.3"])


def test_page_trains_the_label_noise_models_on_click(trained_models, monkeypatch):
    """Small settings (the page's experiment, shrunk): the button trains three models with a
    progress bar, then the curves, metrics and flipped crops appear; a rerun does not retrain."""
    import core.livetrain as lt

    monkeypatch.setattr(N, "LABEL_TRAIN", 240)
    monkeypatch.setattr(N, "LABEL_TEST", 60)
    monkeypatch.setattr(N, "LABEL_EPOCHS", 1)
    at = _page(flip="30", tseed="7")
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "30 % flipped · cross-entropy" in labels and "clean labels · cross-entropy" in labels
    assert any("memorised" in c.value for c in at.caption)
    assert not at.button  # all three are stored now

    calls = []
    monkeypatch.setattr(lt, "train", lambda *a, **k: calls.append(1))
    at.run()
    assert not at.exception and not calls, "a rerun reuses the stored runs"
