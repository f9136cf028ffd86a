"""ImageNet preprocessing constants, `preprocess_input` and `decode_predictions`."""

import functools
import json
from importlib import resources

import numpy as np

# Reference models (torchvision, pytorchcv) take RGB in [0, 1] normalised so.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NUM_CLASSES = 1000


def normalization_constants(channels=3):
    """`(scale, offset)` mapping [0, 255] pixels to the references' input.

    `x * scale + offset == (x / 255 - MEAN) / STD` per channel. Inputs that are
    not RGB (e.g. 1-channel) use the channel averages of MEAN and STD.
    """
    mean, std = np.asarray(MEAN), np.asarray(STD)
    if channels != 3:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    scale, offset = 1.0 / (255.0 * std), -mean / std
    if channels != 3:
        return float(scale[0]), float(offset[0])
    return scale.tolist(), offset.tolist()


def preprocess_input(x, data_format=None, include_preprocessing=True):
    """Prepares RGB pixels in [0, 255] (channels last) for a ShuffleNet.

    Models built with `include_preprocessing=True` (the default) normalise
    inside, so for them this is a pass-through, as in
    `keras.applications.mobilenet_v3`. For models built with
    `include_preprocessing=False`, pass `include_preprocessing=False` here to
    get `(x / 255 - mean) / std` with the ImageNet mean and std.

    Args:
        x: Array of RGB pixels in [0, 255], channels last.
        data_format: Only `None` or `"channels_last"` is supported.
            Defaults to `None`.
        include_preprocessing: Whether the model normalises by itself.
            Defaults to `True`.

    Returns:
        `x` unchanged, or a float32 array of normalised values.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            "ShuffleNet models are channels-last only. "
            f"Received: data_format={data_format!r}"
        )
    if include_preprocessing:
        return x
    scale, offset = normalization_constants(np.shape(x)[-1])
    return np.asarray(x, dtype="float32") * np.float32(scale) + np.float32(offset)


@functools.lru_cache(maxsize=1)
def class_index():
    """The ImageNet class index shipped with the package: `[(wnid, name)] * 1000`."""
    path = resources.files("keras_shufflenet") / "data" / "imagenet_class_index.json"
    table = json.loads(path.read_text(encoding="utf-8"))
    return [tuple(table[str(i)]) for i in range(NUM_CLASSES)]


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions, offline.

    Args:
        preds: Array of shape `(batch, 1000)`: probabilities or logits.
        top: Number of classes to return per sample. Defaults to `5`.

    Returns:
        One list per sample of `(wnid, class_name, score)` tuples, best first,
        as `keras.applications.imagenet_utils.decode_predictions` returns them.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError(
            "`decode_predictions` expects a batch of ImageNet predictions of "
            f"shape (samples, {NUM_CLASSES}). Received: preds.shape={preds.shape}"
        )
    if not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(
            f"`top` must be an integer in [1, {NUM_CLASSES}]. Received: top={top!r}"
        )
    index = class_index()
    results = []
    for row in preds:
        best = np.argsort(row, kind="stable")[::-1][:top]
        results.append([(*index[i], float(row[i])) for i in best])
    return results
