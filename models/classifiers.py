"""A registered classifier, loaded and wrapped once: ``core.classifier.Classifier`` from the registry.

    clf = load_classifier("efficientnet_lite0")        # the photo pages' default, always installed
    clf = load_classifier("shapes-cnn")                # the lab's own shapes CNN (trained here once)

Pre-processing (mean, std, input size), title and categories come from the model's registry
entry, so they are declared once. ``components.classifier`` caches the result per (model,
device) for the app; tests use it directly.
"""

from __future__ import annotations

SHAPES_MODEL = "shapes-cnn"


def load_classifier(name: str, device: str = "cpu"):
    """The registered classifier ``name`` in eval mode on ``device``, as a core.classifier.Classifier.
    Raises models.registry.WeightsUnavailable where its weights are missing and cannot be had."""
    from core.classifier import Classifier
    from models import registry

    if name == SHAPES_MODEL:
        from models.shapes_cnn import load_shapes_cnn

        return Classifier.shapes(registry.for_inference(load_shapes_cnn(), device))
    spec = registry.get_spec(name)
    if spec.task != "classify":
        raise ValueError(f"{name} is a {spec.task} model, not a classifier")
    model = registry.for_inference(registry.load_model(name), device)
    return Classifier.imagenet(model, registry.categories(name), name=name, title=spec.title,
                               mean=spec.mean, std=spec.std, input_size=spec.input_size)
