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
    """Prepares RGB pixels in [0, 255] for a ShuffleNet.

    Models built with `include_preprocessing=True` (the default) normalise
    inside, so for them this is a pass-through, as in
    `keras.applications.mobilenet_v3`. For models built with
    `include_preprocessing=False`, pass `include_preprocessing=False` here to
    get `(x / 255 - mean) / std` with the ImageNet mean and std.

    Args:
        x: Array of RGB pixels in [0, 255], in `data_format`.
        data_format: `"channels_last"` (`(..., H, W, 3)`) or
            `"channels_first"` (`(..., 3, H, W)`). Defaults to `None`:
            `keras.config.image_data_format()`.
        include_preprocessing: Whether the model normalises by itself.
            Defaults to `True`.

    Returns:
        `x` unchanged, or a float32 array of normalised values.
    """
    import keras

    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            '`data_format` must be "channels_last" or "channels_first". '
            f"Received: data_format={data_format!r}"
        )
    if include_preprocessing:
        return x
    x = np.asarray(x, dtype="float32")
    channel_axis = -3 if data_format == "channels_first" else -1
    scale, offset = normalization_constants(x.shape[channel_axis])
    shape = (-1, 1, 1) if data_format == "channels_first" else (-1,)
    return x * np.reshape(np.float32(scale), shape) + np.reshape(np.float32(offset), shape)


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
