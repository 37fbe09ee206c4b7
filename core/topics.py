"""The catalogue of CV Interview Lab: its 31 interactive pages and the 50 questions they answer.

Pure Python (standard library only) so that the Home page, every page and the tests can
import it without pulling in Streamlit, torch or any model.

* ``GROUPS``    - the five sections of the app, in display order.
* ``PAGES``     - the 31 pages, in file-number order (``pages/01_...py`` .. ``pages/31_...py``).
* ``QUESTIONS`` - the 50 interview questions, in number order, each pointing at the page
  that answers it (``page``) and at any other pages that also touch it (``also``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "GROUPS",
    "PAGES",
    "QUESTIONS",
    "Page",
    "Question",
    "filter_questions",
    "grouped",
    "page_by_file",
    "page_by_slug",
    "questions_for",
]


@dataclass(frozen=True)
class Page:
    slug: str  # e.g. "object-detection"
    title: str  # e.g. "Object detection"
    file: str  # e.g. "pages/01_Object_detection.py"
    group: str  # one of GROUPS
    icon: str  # one emoji
    blurb: str  # one sentence: what the live demo lets you do
    # Registered models (models/registry.py) the page may load. A page with a pretrained
    # one gets the slower warm-rerun budget in the benchmark; set it when the page is built.
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    number: int  # 1..50
    text: str  # the question, in the app's own words
    page: str  # slug of the page that answers it
    also: tuple[str, ...] = ()  # other pages that touch it


GROUPS: tuple[str, ...] = (
    "Detection and segmentation",
    "Inside the network and robustness",
    "Efficiency and deployment",
    "How networks learn",
    "Beyond plain classification",
)

_DET, _INSIDE, _EFF, _LEARN, _BEYOND = GROUPS

PAGES: tuple[Page, ...] = (
    # --- Detection and segmentation -------------------------------------------------
    Page(
        "object-detection", "Object detection", "pages/01_Object_detection.py", _DET, "🎯",
        "Run a one-stage (YOLO11) and a two-stage (Faster R-CNN) detector on your photo, "
        "move the confidence and IoU sliders, and watch non-maximum suppression prune the "
        "candidates.",
        models=("yolo11n", "fasterrcnn_mobilenet_v3_large_fpn", "shapes-yolo"),
    ),
    Page(
        "anchor-boxes", "Anchor boxes", "pages/02_Anchor_boxes.py", _DET, "⚓",
        "Lay a grid of anchors over your image, change their scales and aspect ratios, and "
        "see which anchors are matched to each object at the IoU threshold you choose.",
        models=("yolo11n", "shapes-yolo"),
    ),
    Page(
        "mask-r-cnn", "Mask R-CNN and instance segmentation", "pages/03_Mask_R-CNN.py", _DET,
        "🎭",
        "Run Mask R-CNN on your photo and toggle its boxes, per-instance masks and labels "
        "to see how every object gets a pixel mask of its own.",
        models=("maskrcnn_resnet50_fpn", "yolo11n-seg", "shapes-maskrcnn", "shapes-yolo-seg"),
    ),
    Page(
        "semantic-segmentation", "Semantic segmentation", "pages/04_Semantic_segmentation.py",
        _DET, "🗺️",
        "Segment your photo with a pretrained fully convolutional network, blend the "
        "per-pixel class map over the image, and inspect which classes cover how much of it.",
        models=("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "shapes-seg"),
    ),
    Page(
        "object-tracking", "Object tracking", "pages/05_Object_tracking.py", _DET, "🛰️",
        "Track the objects in a short video clip, follow each track ID from frame to frame, "
        "and spot where identities switch or tracks are lost.",
        models=("yolo11n", "shapes-yolo"),
    ),
    # --- Inside the network and robustness ------------------------------------------
    Page(
        "feature-extraction", "Feature extraction", "pages/06_Feature_extraction.py", _INSIDE,
        "🧬",
        "Pick a layer of a pretrained CNN and browse the feature maps your image produces "
        "there, from edge detectors in the first block to object parts deep in the network.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "interpretability", "Interpretability", "pages/07_Interpretability.py", _INSIDE, "🔍",
        "Compute Grad-CAM, saliency and integrated-gradients maps for a prediction on your "
        "image and compare where each method says the network was looking.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "occlusion-illumination", "Occlusion and illumination",
        "pages/08_Occlusion_and_illumination.py", _INSIDE, "🌗",
        "Slide an occluding patch across your image or change its brightness and contrast, "
        "and watch the classifier's confidence or the detector's boxes respond.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn', 'yolo11n', 'shapes-yolo'),
    ),
    Page(
        "noise-outliers", "Noise and outliers", "pages/09_Noise_and_outliers.py", _INSIDE, "📡",
        "Add Gaussian, salt-and-pepper or blur noise to your image at rising strength and "
        "compare the model's predictions before and after denoising.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "adversarial-attacks", "Adversarial attacks", "pages/10_Adversarial_attacks.py",
        _INSIDE, "🥷",
        "Craft an FGSM or PGD attack on your image with an epsilon slider and watch a "
        "perturbation you can barely see flip the classifier's answer.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "missing-data", "Missing data", "pages/11_Missing_data.py", _INSIDE, "🧩",
        "Blank out regions of your image and compare how the model copes when the gaps are "
        "zero-filled, blurred over or inpainted.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    # --- Efficiency and deployment --------------------------------------------------
    Page(
        "quantization", "Quantization", "pages/12_Quantization.py", _EFF, "🗜️",
        "Quantize a CNN to INT8 (and FP16/BF16 where the hardware has them) and compare size, "
        "latency and agreement with FP32, with the weight histogram on the INT8 grid.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "gpu-acceleration", "GPU acceleration", "pages/13_GPU_acceleration.py", _EFF, "⚡",
        "Time the same forward pass on CPU and GPU across batch sizes and precisions and "
        "see where the speed-up levels off.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "knowledge-distillation", "Knowledge distillation",
        "pages/14_Knowledge_distillation.py", _EFF, "⚗️",
        "Train a small student live with and without a teacher's soft targets, turn the "
        "temperature slider, and compare their accuracy, size and speed.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "deployment", "Deployment", "pages/15_Deployment.py", _EFF, "🚀",
        "Export a model to TorchScript and ONNX, check that the exported outputs still "
        "match, and measure the latency of each runtime.",
        models=('efficientnet_lite0', 'resnet18', 'shapes-cnn'),
    ),
    Page(
        "frameworks", "Frameworks", "pages/16_Frameworks.py", _EFF, "🧰",
        "Run the same small CNN as PyTorch eager, torch.compile, TorchScript and ONNX "
        "Runtime, compare their outputs and latency, and read it written in PyTorch and Keras.",
        models=('shapes-cnn',),
    ),
    Page(
        "distributed-training", "Distributed training", "pages/17_Distributed_training.py",
        _EFF, "🕸️",
        "Launch real worker processes that train one CNN with DistributedDataParallel, "
        "measure compute and all-reduce time, and extrapolate the scaling to many machines.",
    ),
    # --- How networks learn ---------------------------------------------------------
    Page(
        "backpropagation", "Backpropagation", "pages/18_Backpropagation.py", _LEARN, "🔁",
        "Step a tiny convolutional network forward and backward on one image and watch the "
        "gradients flow back through each layer to update its weights.",
    ),
    Page(
        "transfer-learning", "Transfer learning", "pages/19_Transfer_learning.py", _LEARN,
        "🎓",
        "Fine-tune a pretrained backbone on a small dataset with its layers frozen or "
        "unfrozen and compare the result with training from scratch.",
        models=("efficientnet_lite0", "resnet18", "shapes-pretext"),
    ),
    Page(
        "data-augmentation", "Data augmentation", "pages/20_Data_augmentation.py", _LEARN,
        "🎲",
        "Apply flips, crops, colour jitter, rotations, MixUp and CutMix to your image and "
        "preview a whole augmented batch.",
        models=("efficientnet_lite0", "resnet18", "shapes-cnn"),
    ),
    Page(
        "pooling", "Pooling", "pages/21_Pooling.py", _LEARN, "🧮",
        "Run max, average and strided pooling over a feature map, vary the kernel and "
        "stride, and see how much shift invariance each one buys.",
    ),
    Page(
        "class-imbalance", "Class imbalance", "pages/22_Class_imbalance.py", _LEARN, "⚖️",
        "Skew a dataset's class ratio with a slider and compare plain training, class "
        "weights, oversampling and focal loss on per-class recall.",
    ),
    Page(
        "self-supervised-learning", "Self-supervised learning",
        "pages/23_Self-supervised_learning.py", _LEARN, "🪞",
        "Generate two augmented views of your image the way a contrastive method does and "
        "see how close a self-supervised encoder places them in embedding space.",
    ),
    Page(
        "ensembles", "Ensembles", "pages/24_Ensembles.py", _LEARN, "🎻",
        "Train several small CNNs with different seeds and widths, combine them by averaging "
        "or voting, and compare the ensemble's answer and confidence with each member's.",
    ),
    Page(
        "attention", "Attention", "pages/25_Attention.py", _LEARN, "👁️",
        "Visualise squeeze-and-excitation channel weights and a spatial attention map for "
        "your image to see what the network chooses to emphasise.",
    ),
    Page(
        "multi-label", "Multi-label", "pages/26_Multi-label.py", _LEARN, "🏷️",
        "Score your image with independent sigmoid outputs, move the per-class thresholds, "
        "and see several labels switch on at once.",
        models=("shapes-cnn",),
    ),
    # --- Beyond plain classification ------------------------------------------------
    Page(
        "ocr", "OCR", "pages/27_OCR.py", _BEYOND, "🔤",
        "Read the text in your photo with a CNN-based recogniser and inspect the detected "
        "text regions, the per-character probabilities and the CTC decoding.",
        models=("ocr-crnn",),
    ),
    Page(
        "embeddings-retrieval", "Embeddings and retrieval",
        "pages/28_Embeddings_and_retrieval.py", _BEYOND, "🧲",
        "Embed a gallery of images with a pretrained CNN, query it with your own photo to "
        "pull up the nearest neighbours, and see the gallery laid out in two dimensions.",
        models=("efficientnet_lite0", "resnet18", "shapes-cnn"),
    ),
    Page(
        "medical-imaging-unet", "Medical imaging and U-Net",
        "pages/29_Medical_imaging_U-Net.py", _BEYOND, "🩻",
        "Train a small U-Net on synthetic cell images, switch its skip connections off to see "
        "what they do for boundaries, and segment your own image in grayscale.",
    ),
    Page(
        "cnns-for-text", "CNNs for text", "pages/30_CNNs_for_text.py", _BEYOND, "📝",
        "Slide one-dimensional convolution filters over a sentence's word embeddings and "
        "see which n-grams make each filter fire in a text classifier.",
    ),
    Page(
        "multi-modal-fusion", "Multi-modal fusion", "pages/31_Multi-modal_fusion.py", _BEYOND,
        "🔗",
        "Pair an image with a word that changes its label and compare early fusion, late "
        "fusion and each modality alone, then drop a modality at test time.",
    ),
)

QUESTIONS: tuple[Question, ...] = (
    Question(1, "What does each layer of a CNN pick up as an image passes through it, and "
             "why do the features grow from edges to textures to whole object parts?",
             "feature-extraction"),
    Question(2, "How does backpropagation work out the gradient of the loss for every "
             "convolution weight, and how does gradient descent use it to train the network?",
             "backpropagation"),
    Question(3, "Why do features learned on a large dataset such as ImageNet carry over to "
             "a different vision task, and how do you reuse a pretrained network?",
             "transfer-learning"),
    Question(4, "Which data augmentation techniques would you apply to an image dataset, "
             "and how does each one change what the model learns?",
             "data-augmentation"),
    Question(5, "How does a CNN find and locate objects in an image, and which detector "
             "families are used today?",
             "object-detection"),
    Question(6, "What is object tracking, and how do you turn a CNN detector into a tracker "
             "that keeps each object's identity from frame to frame?",
             "object-tracking"),
    Question(7, "What does semantic segmentation give you that classification and detection "
             "do not, and how does a fully convolutional network label every pixel?",
             "semantic-segmentation"),
    Question(8, "How would you build a CNN-based system that reads text from images, and "
             "what makes OCR hard in practice?",
             "ocr"),
    Question(9, "What is an image embedding, and what can you do with one once a network "
             "has produced it?",
             "embeddings-retrieval"),
    Question(10, "What is knowledge distillation, and why would you train a small student "
              "network on the outputs of a large teacher?",
              "knowledge-distillation"),
    Question(11, "What happens to a CNN's memory footprint when you store its weights as "
              "8-bit integers instead of 32-bit floats, and how is the conversion done?",
              "quantization"),
    Question(12, "How does distributed training split the work of training one network "
              "across several GPUs, and how do the copies stay in sync?",
              "distributed-training"),
    Question(13, "Would you pick PyTorch or TensorFlow to build and train a CNN, and what "
              "would drive that choice?",
              "frameworks"),
    Question(14, "Why do GPUs train and run convolutional networks so much faster than "
              "CPUs?",
              "gpu-acceleration"),
    Question(15, "How do occlusion and changes in lighting hurt a CNN's predictions, and "
              "what can you do about each?",
              "occlusion-illumination"),
    Question(16, "What does spatial pooling do inside a CNN, and what do max pooling and "
              "average pooling each give up?",
              "pooling"),
    Question(17, "Your training set has far more examples of some classes than of others: "
              "how do you stop the model from ignoring the rare ones?",
              "class-imbalance"),
    Question(18, "Where does transfer learning fit when you develop a new vision model, and "
              "how do you choose between freezing the backbone and fine-tuning it?",
              "transfer-learning"),
    Question(19, "How does partial occlusion change an object detector's boxes and "
              "confidence scores, and how would you make the detector more robust to it?",
              "occlusion-illumination"),
    Question(20, "Where is image segmentation used in practice, and what do those "
              "applications need from the masks it produces?",
              "semantic-segmentation"),
    Question(21, "How does instance segmentation differ from semantic segmentation, and "
              "which architectures are commonly used for it?",
              "mask-r-cnn"),
    Question(22, "What makes object tracking hard (crowds, identity switches, fast motion, "
              "objects leaving the frame), and how do modern trackers cope?",
              "object-tracking"),
    Question(23, "What role do anchor boxes play in detectors such as SSD and Faster R-CNN, "
              "and how are they matched to the ground-truth objects during training?",
              "anchor-boxes"),
    Question(24, "How is Mask R-CNN built on top of Faster R-CNN, and what do its mask "
              "branch and RoIAlign add?",
              "mask-r-cnn"),
    Question(25, "What trips up CNN-based text recognition on real-world images, and how "
              "does a CRNN trained with CTC loss read a line of any length?",
              "ocr"),
    Question(26, "How would you use CNN embeddings to build a search-by-image system that "
              "returns the most similar pictures in a large collection?",
              "embeddings-retrieval"),
    Question(27, "How do you implement distillation in practice (the loss, the temperature, "
              "the choice of student), and what does it buy you?",
              "knowledge-distillation"),
    Question(28, "How much speed, memory and accuracy do you trade when you quantize a "
              "model, and when is post-training quantization not enough?",
              "quantization"),
    Question(29, "When a model or its dataset outgrows one GPU, how do data parallelism and "
              "model parallelism spread training across GPUs and machines?",
              "distributed-training"),
    Question(30, "Which concrete features (eager execution, graph compilation, deployment "
              "tooling, ecosystem) set PyTorch and TensorFlow apart?",
              "frameworks"),
    Question(31, "Where does a GPU stop speeding up a CNN, and which bottlenecks, such as "
              "memory, data loading or small batches, take over?",
              "gpu-acceleration"),
    Question(32, "How do you keep detecting and tracking an object while it is partly or "
              "completely hidden behind something else?",
              "occlusion-illumination", also=("object-tracking",)),
    Question(33, "How do you make a vision model robust to changes in illumination such as "
              "shadows, glare, night scenes or a different camera exposure?",
              "occlusion-illumination"),
    Question(34, "With only a few hundred labelled images, how far can data augmentation "
              "take you, and where does it stop helping?",
              "data-augmentation"),
    Question(35, "Why is accuracy misleading on an imbalanced classification problem, and "
              "which metrics and losses would you use instead?",
              "class-imbalance"),
    Question(36, "How can a network learn useful visual features from unlabelled images, "
              "and which pretext or contrastive tasks make that work?",
              "self-supervised-learning"),
    Question(37, "What makes medical images different from everyday photos, and which CNN "
              "architectures suit them?",
              "medical-imaging-unet"),
    Question(38, "How does U-Net's encoder-decoder with skip connections work, and why does "
              "it segment well from only a few training images?",
              "medical-imaging-unet"),
    Question(39, "How do noisy pixels and mislabelled or outlying training examples affect "
              "a CNN, and how do you make it robust to them?",
              "noise-outliers"),
    Question(40, "How would you combine several CNNs into an ensemble, and when is the "
              "extra inference cost worth the gain?",
              "ensembles"),
    Question(41, "What do attention mechanisms such as squeeze-and-excitation or spatial "
              "attention add to a convolutional network?",
              "attention"),
    Question(42, "What is an adversarial example, how do you craft one against a CNN, and "
              "which defenses actually hold up?",
              "adversarial-attacks"),
    Question(43, "How can a convolutional network, designed for images, be applied to text "
              "classification and other language tasks?",
              "cnns-for-text"),
    Question(44, "How would you build a model that combines images with another modality "
              "such as text or audio, and where in the network should the fusion happen?",
              "multi-modal-fusion"),
    Question(45, "How do you find out what a CNN is looking at when it makes a prediction, "
              "and which visualisation methods would you trust?",
              "interpretability"),
    Question(46, "What does it take to ship a trained CNN to production: export format, "
              "runtime, latency budget and monitoring?",
              "deployment"),
    Question(47, "During training itself, how do resampling and loss weighting change what a "
              "model learns from a skewed dataset, and what can go wrong with each?",
              "class-imbalance"),
    Question(48, "What concrete benefits does transfer learning bring in data, compute and "
              "accuracy, and when can it hurt rather than help?",
              "transfer-learning"),
    Question(49, "How should a vision pipeline cope with missing or incomplete inputs, such "
              "as masked regions, corrupted frames or absent labels?",
              "missing-data"),
    Question(50, "When one image can carry several labels at once, how do the output layer, "
              "the loss and the decision thresholds change?",
              "multi-label"),
)

_BY_SLUG: dict[str, Page] = {p.slug: p for p in PAGES}
_BY_FILENAME: dict[str, Page] = {p.file.rsplit("/", 1)[-1]: p for p in PAGES}

# A search word that names a question number: "5", "05", "q5", "Q5", "#5".
_NUMBER_WORD = re.compile(r"[q#]?(\d{1,4})")


def page_by_slug(slug: str) -> Page:
    """The page with this slug; ``KeyError`` naming the known slugs if there is none."""
    try:
        return _BY_SLUG[slug]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_BY_SLUG))
        raise KeyError(f"unknown page slug {slug!r}; known slugs: {known}") from None


def page_by_file(file: str) -> Page | None:
    """The page stored in ``file``, or ``None``.

    Accepts ``"pages/01_Object_detection.py"``, the bare file name, or any path ending in
    it (so a page can pass its own ``__file__``, on POSIX or Windows).
    """
    if not isinstance(file, str):
        return None
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return _BY_FILENAME.get(name)


def questions_for(slug: str) -> list[Question]:
    """Questions answered (``page``) or touched (``also``) by this page, in number order.

    Raises ``KeyError`` for an unknown slug, so a typo in a page shows up at once.
    """
    page_by_slug(slug)
    return [q for q in QUESTIONS if q.page == slug or slug in q.also]


def _haystack(q: Question) -> str:
    page = _BY_SLUG[q.page]
    parts = [q.text, page.title, page.group]
    parts += [_BY_SLUG[s].title for s in q.also if s in _BY_SLUG]
    return "\n".join(parts).casefold()


_HAYSTACKS: dict[Question, str] = {q: _haystack(q) for q in QUESTIONS}


def _matches(q: Question, word: str) -> bool:
    number = _NUMBER_WORD.fullmatch(word)
    if number is not None:
        # A pure number (optionally "q"/"#"-prefixed) selects that question, not any text
        # that happens to contain the digits ("8" should not find "8-bit integers").
        return int(number.group(1)) == q.number
    hay = _HAYSTACKS.get(q)
    if hay is None:  # a Question built outside the catalogue
        hay = _haystack(q) if q.page in _BY_SLUG else q.text.casefold()
    return word in hay


def filter_questions(query: str, questions: Iterable[Question] = QUESTIONS) -> list[Question]:
    """The questions matching every word of ``query``, in number order.

    Case-insensitive. Each word must occur in the question text, its page title (or the
    title of a page it is ``also`` on) or its group, or name its number ("5", "q5", "Q5").
    An empty or blank query returns all the questions. Never raises on odd input: the
    words are matched as plain substrings, never as regular expressions.
    """
    pool = sorted(questions, key=lambda q: q.number)
    words = str(query or "").casefold().split()
    if not words:
        return pool
    return [q for q in pool if all(_matches(q, w) for w in words)]


def grouped(
    questions: Iterable[Question],
) -> list[tuple[str, list[tuple[Page, list[Question]]]]]:
    """``[(group, [(page, [questions by number]), ...]), ...]`` in GROUPS and PAGES order.

    Each question appears once, under its main page; pages and groups with no questions
    are left out.
    """
    by_page: dict[str, list[Question]] = {}
    seen: set[int] = set()
    for q in sorted(questions, key=lambda q: q.number):
        if q.number in seen:
            continue
        seen.add(q.number)
        by_page.setdefault(q.page, []).append(q)

    result: list[tuple[str, list[tuple[Page, list[Question]]]]] = []
    for group in GROUPS:
        entries = [(p, by_page[p.slug]) for p in PAGES if p.group == group and p.slug in by_page]
        if entries:
            result.append((group, entries))
    return result
