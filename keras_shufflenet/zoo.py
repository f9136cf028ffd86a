"""Models by name, for the command line and the programs in tflite/ and training/."""

import os

from keras_shufflenet import builder, specs
from keras_shufflenet import weights as weights_lib

DEFAULT_RESIZE, DEFAULT_CROP = 256, 224
VERSIONS = {"v1": "v1", "v2": "v2", "shufflenetv1": "v1", "shufflenetv2": "v2"}


def weights_argument(text):
    """A `weights` value from the command line: "none" means random weights."""
    return None if text.lower() == "none" else text


def spec_for(model="v2", alpha=1.0, groups=3):
    """The spec of `model` ("v1"/"v2", or "shufflenetv1"/"shufflenetv2")."""
    if model not in VERSIONS:
        raise ValueError(f"`model` must be one of {sorted(VERSIONS)}. Received: model={model!r}")
    if VERSIONS[model] == "v2":
        return specs.v2_spec(alpha)
    return specs.v1_spec(groups, alpha)


def eval_size(spec, weights="imagenet"):
    """Published evaluation `(resize, crop)` of `spec`, else 256/224."""
    weights_lib.check_weights_argument(weights)
    try:
        entry = weights_lib.get_entry(spec)
    except ValueError:
        if weights == "imagenet":
            raise
        return DEFAULT_RESIZE, DEFAULT_CROP
    return entry.resize, entry.crop


def load(model="v2", alpha=1.0, groups=3, weights="imagenet", keras_model=None):
    """`(model, resize, crop)` from a variant and weights, or from a `.keras` file."""
    if keras_model is None:
        spec = spec_for(model, alpha, groups)
        resize, crop = eval_size(spec, weights)
        return builder.build_model(spec, weights=weights), resize, crop
    if weights not in ("imagenet", None):
        raise ValueError(
            "Pass either a saved model or weights, not both. "
            f"Received: keras_model={keras_model!r}, weights={weights!r}"
        )
    if not str(keras_model).endswith(".keras") or not os.path.isfile(keras_model):
        raise ValueError(
            f"Expected an existing saved `.keras` model. Received: keras_model={keras_model!r}"
        )
    import keras

    return keras.saving.load_model(keras_model), DEFAULT_RESIZE, DEFAULT_CROP
