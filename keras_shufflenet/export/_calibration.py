"""Input sizes and calibration images, shared by the TFLite and ONNX exports
and by quantization-aware training."""

import os
from pathlib import Path

import numpy as np

from keras_shufflenet import _images
from keras_shufflenet.models._builder import MIN_SIZE

MIN_CALIBRATION_IMAGES = 10
DEFAULT_SIZE = 224


def check_input_size(input_size):
    """`input_size` (`None`, `H` or `(H, W)`) as `None` or a pair, checked."""
    if input_size is None:
        return None
    size = (input_size, input_size) if np.ndim(input_size) == 0 else tuple(input_size)
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= MIN_SIZE
        for s in size
    ):
        raise ValueError(
            f"`input_size` must be an int `H` or a pair `(H, W)` of at least {MIN_SIZE} "
            f"(the smallest input the models take). Received: input_size={input_size!r}"
        )
    return tuple(int(s) for s in size)


def input_dims(model, input_size=None):
    """`(H, W, C)` of `model`'s input with `input_size` (`H` or `(H, W)`)
    applied; `None` where H or W stays flexible."""
    height, width, channels = model.inputs[0].shape[1:]
    size = check_input_size(input_size)
    if size is None:
        return height, width, channels
    if any(d is not None and d != s for d, s in zip((height, width), size)):
        raise ValueError(
            f"`input_size` conflicts with the model's input {(height, width)}. "
            f"Received: input_size={input_size!r}"
        )
    return (*size, channels)


def input_shape_of(model, input_size):
    """`input_dims`, with 224 for a flexible H or W."""
    height, width, channels = input_dims(model, input_size)
    return (height or DEFAULT_SIZE, width or DEFAULT_SIZE, channels)


def size_from_data(model, input_size, data):
    """`input_size`, or the size of the images in `data` for a flexible-size model."""
    if input_size is None and None in model.inputs[0].shape[1:3] and np.ndim(data) == 4:
        return np.shape(data)[1:3]
    return input_size


def representative_images(model, data, input_size=None, resize=None, crop=None):
    """`data` as float32 images `(N, H, W, C)` of `model`'s input size.

    `data` is what `export_tflite` takes as `representative_data`: an array,
    a `tf.data` dataset, or a folder of image files (resized to `resize` and
    centre-cropped to `crop`, default the input size). At least
    `MIN_CALIBRATION_IMAGES`.
    """
    input_shape = input_shape_of(model, size_from_data(model, input_size, data))
    return calibration_images(data, input_shape, resize, crop)


def check_representative_folder(data):
    """The image files of `data` when it names a folder (`None` for arrays and
    datasets); a ValueError when the folder is missing or holds no images."""
    if not isinstance(data, (str, os.PathLike)):
        return None
    folder = Path(data)
    if not folder.is_dir():
        raise ValueError(
            "`representative_data` as a path must be a folder of images. "
            f"Received: representative_data={os.fspath(data)!r}"
        )
    paths = _images.image_files(folder, recursive=True)
    if not paths:
        raise ValueError(
            f"`representative_data` names a folder without image files "
            f"({', '.join(_images.IMAGE_SUFFIXES)}). "
            f"Received: representative_data={os.fspath(data)!r}"
        )
    return paths


def calibration_images(representative_data, input_shape, resize, crop):
    """Calibration images as a float32 array `(N, H, W, C)`."""
    height, width, channels = input_shape
    data = representative_data
    if isinstance(data, (str, os.PathLike)):
        paths = check_representative_folder(data)
        data = _images.load_images(paths, resize or max(height, width), crop or height)
    elif _is_dataset(data):
        data = np.stack([np.asarray(x) for x in data.unbatch()]) if _is_batched(data) else np.stack(
            [np.asarray(x) for x in data]
        )
    data = np.asarray(data, dtype="float32")
    if data.ndim != 4 or data.shape[1:] != (height, width, channels):
        raise ValueError(
            f"`representative_data` must hold images of shape {(height, width, channels)} "
            f"(N, H, W, C). Received: representative_data.shape={data.shape}"
        )
    if len(data) < MIN_CALIBRATION_IMAGES:
        raise ValueError(
            f"int8 calibration needs at least {MIN_CALIBRATION_IMAGES} representative images "
            f"(a few hundred is typical). Received: {len(data)} images"
        )
    return data


def _is_dataset(data):
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _is_batched(dataset):
    shape = dataset.element_spec.shape
    return shape.rank == 4
