"""How far a `.tflite` model's answers are from the Keras model it came from.

`evaluate_tflite` feeds the same images to both, one at a time through the
LiteRT interpreter (quantizing the uint8 pixels for int8/uint8 models, and
dequantizing the output) and reports top-1 agreement, the output error, and
top-1 accuracy when the folder's layout gives labels.

Image folders are either flat (no labels) or hold one sub-folder per class:

- sub-folders named by WordNet id (`n01440764`, ...) and a 1000-class model:
  the labels are the ImageNet class indices (`_imagenet.class_index()`);
- otherwise, as many sub-folders as the model has classes: sorted order;
- otherwise no labels (agreement and error are still reported).

Images lying next to class sub-folders are evaluated without a label.
"""

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from keras_shufflenet import _imagenet, _images

WNID = re.compile(r"n\d{8}")
KERAS_BATCH = 32


@dataclasses.dataclass
class EvaluationResult:
    """TFLite-versus-Keras agreement on a folder of images.

    Attributes:
        tflite: Path of the `.tflite` model.
        images: Images evaluated.
        labeled: Images with a label.
        label_source: `"imagenet"` (WordNet-id folders), `"folders"` (sorted
            sub-folder order) or `None`.
        input_type: The `.tflite` input dtype (`"float32"`, `"int8"`, ...).
        top1_agreement: Fraction of images whose top-1 class is the same.
        mean_abs_error: Mean absolute difference of the outputs (dequantized
            TFLite versus Keras, after the same final activation).
        max_abs_error: Largest absolute difference.
        keras_top1: Top-1 accuracy of the Keras model on labeled images, or `None`.
        tflite_top1: Top-1 accuracy of the `.tflite` model, or `None`.
    """

    tflite: str
    images: int
    labeled: int
    label_source: str | None
    input_type: str
    top1_agreement: float
    mean_abs_error: float
    max_abs_error: float
    keras_top1: float | None = None
    tflite_top1: float | None = None

    def to_dict(self):
        return dataclasses.asdict(self)

    def summary(self):
        """A few `name: value` lines for people."""
        lines = [
            f"model:              {self.tflite} ({self.input_type} input)",
            f"images:             {self.images} ({self.labeled} labeled"
            + (f", labels from {self.label_source})" if self.label_source else ")"),
            f"top-1 agreement:    {self.top1_agreement * 100:.2f}%",
            f"mean |error|:       {self.mean_abs_error:.6g}",
            f"max |error|:        {self.max_abs_error:.6g}",
        ]
        if self.keras_top1 is not None:
            lines.append(f"top-1 Keras:        {self.keras_top1 * 100:.2f}%")
            lines.append(f"top-1 TFLite:       {self.tflite_top1 * 100:.2f}%")
        return "\n".join(lines)


def class_labels(folder_names, num_classes):
    """Label of each class folder name, and where the labels come from.

    Returns:
        `({name: label}, "imagenet" | "folders")`, or `({}, None)` when the
        folder names and the model's class count do not match.
    """
    names = sorted(folder_names)
    if not names:
        return {}, None
    if num_classes == _imagenet.NUM_CLASSES and all(WNID.fullmatch(n) for n in names):
        index = {wnid: i for i, (wnid, _) in enumerate(_imagenet.class_index())}
        if all(n in index for n in names):
            return {n: index[n] for n in names}, "imagenet"
    if len(names) == num_classes:
        return {n: i for i, n in enumerate(names)}, "folders"
    return {}, None


def find_images(image_dir, num_classes):
    """`(paths, labels, label_source)` of the images under `image_dir`.

    `labels[i]` is `None` for an image without a label.
    """
    folder = Path(image_dir)
    if not folder.is_dir():
        raise ValueError(
            f"The image folder does not exist. Received: image_dir={os.fspath(image_dir)!r}"
        )
    classes = {
        sub.name: _images.image_files(sub)
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and not sub.name.startswith(".")
    }
    classes = {name: files for name, files in classes.items() if files}
    mapping, source = class_labels(classes, num_classes)
    paths, labels = [], []
    for path in _images.image_files(folder):
        paths.append(path)
        labels.append(None)
    for name, files in classes.items():
        paths += files
        labels += [mapping.get(name)] * len(files)
    if not paths:
        raise ValueError(
            f"No images ({', '.join(_images.IMAGE_SUFFIXES)}) found in {os.fspath(image_dir)!r} "
            "or its sub-folders. Expected a folder of images or one sub-folder "
            f"of images per class. Received: image_dir={os.fspath(image_dir)!r}"
        )
    return paths, labels, source


class _TFLiteRunner:
    """Batch-1 LiteRT interpreter fed with uint8 pixels."""

    def __init__(self, tflite_path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(tflite_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No .tflite model exists at that path. Received: tflite_path={path!r}"
            )
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
            self.input = self.interpreter.get_input_details()[0]
            if self.input["shape"][0] != 1:
                self.interpreter.resize_tensor_input(
                    self.input["index"], [1, *self.input["shape"][1:]]
                )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"{path!r} could not be loaded as a TFLite model: {error}"
            ) from error
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.shape = tuple(int(d) for d in self.input["shape"])
        self.input_type = np.dtype(self.input["dtype"]).name

    def __call__(self, x):
        """`x`: float32 `(1, H, W, C)` model input; returns the float output row."""
        dtype = np.dtype(self.input["dtype"])
        if dtype.kind in "iu":
            scale, zero_point = self.input["quantization"]
            if not scale:
                raise ValueError(
                    f"The .tflite input is {dtype.name} without quantization "
                    "parameters; expected a scale and zero point."
                )
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(dtype))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if np.dtype(self.output["dtype"]).kind in "iu":
            scale, zero_point = self.output["quantization"]
            y = (y.astype(np.float32) - zero_point) * scale
        return np.asarray(y, dtype=np.float32).reshape(-1)


def _has_preprocessing(keras_model):
    return any(layer.name == "preprocessing" for layer in keras_model.layers)


def evaluate_tflite(
    tflite_path, keras_model, image_dir, resize=256, crop=224, limit=None
):
    """Compares a `.tflite` model with its Keras model on a folder of images.

    Images are loaded with `images.load_image(path, resize, crop)`. Both
    models get the same input: RGB pixels in [0, 255] for models that
    normalise inside (`include_preprocessing=True`), otherwise the ImageNet
    normalisation of `preprocess_input(..., include_preprocessing=False)`.
    An int8/uint8 `.tflite` input is quantized with its scale and zero point.

    Args:
        tflite_path: Path of the `.tflite` model (batch 1).
        keras_model: The Keras model it was converted from (float).
        image_dir: A folder of images, or of one sub-folder per class.
        resize: Shorter side before the centre crop. Defaults to `256`.
        crop: Side of the centre crop; must match the `.tflite` input.
            Defaults to `224`.
        limit: Evaluate at most this many images (in sorted order).
            Defaults to `None` (all).

    Returns:
        An `EvaluationResult`.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"`limit` must be a positive integer or None. Received: limit={limit!r}"
        )
    runner = _TFLiteRunner(tflite_path)
    _, height, width, channels = runner.shape
    if (height, width) != (crop, crop):
        raise ValueError(
            f"The .tflite model takes {height}x{width} images but `crop` is {crop}; "
            f"pass crop={height} (and a matching resize). Received: crop={crop}"
        )
    keras_shape = tuple(keras_model.input_shape[1:3])
    if any(d is not None and d != crop for d in keras_shape):
        raise ValueError(
            f"The Keras model takes {keras_shape} images but `crop` is {crop}. "
            f"Received: crop={crop}"
        )
    num_classes = int(keras_model.output_shape[-1])
    if runner.output["shape"][-1] != num_classes:
        raise ValueError(
            f"The .tflite model has {runner.output['shape'][-1]} outputs and the "
            f"Keras model {num_classes}; they are not the same model."
        )
    paths, labels, source = find_images(image_dir, num_classes)
    if limit is not None:
        paths, labels = paths[:limit], labels[:limit]

    import keras

    preprocessing = _has_preprocessing(keras_model)
    keras_out, tflite_out = [], []
    for start in range(0, len(paths), KERAS_BATCH):
        batch = _images.load_images(paths[start : start + KERAS_BATCH], resize, crop)
        if batch.shape[-1] != channels:
            raise ValueError(
                f"The .tflite model takes {channels}-channel images; the loader gives "
                f"RGB. Received: input shape {runner.shape}"
            )
        x = batch.astype(np.float32)
        if not preprocessing:
            x = _imagenet.preprocess_input(x, include_preprocessing=False)
        y = keras_model(x, training=False)
        keras_out.append(np.asarray(keras.ops.convert_to_numpy(y), dtype=np.float32))
        tflite_out += [runner(x[i : i + 1]) for i in range(len(x))]
    keras_out = np.concatenate(keras_out).reshape(len(paths), -1)
    tflite_out = np.stack(tflite_out)

    keras_top, tflite_top = keras_out.argmax(-1), tflite_out.argmax(-1)
    error = np.abs(tflite_out - keras_out)
    labeled = np.array([label is not None for label in labels])
    keras_top1 = tflite_top1 = None
    if labeled.any():
        truth = np.array([label for label in labels if label is not None])
        keras_top1 = float(np.mean(keras_top[labeled] == truth))
        tflite_top1 = float(np.mean(tflite_top[labeled] == truth))
    return EvaluationResult(
        tflite=os.fspath(tflite_path),
        images=len(paths),
        labeled=int(labeled.sum()),
        label_source=source if labeled.any() else None,
        input_type=runner.input_type,
        top1_agreement=float(np.mean(keras_top == tflite_top)),
        mean_abs_error=float(error.mean()),
        max_abs_error=float(error.max()),
        keras_top1=keras_top1,
        tflite_top1=tflite_top1,
    )


def tflite_top1(tflite_path, batches, limit=None, num_threads=None):
    """Top-1 accuracy of a `.tflite` classifier, run image by image (batch 1).

    Args:
        tflite_path: Path of the `.tflite` model.
        batches: Iterable of `(images, labels)`: model input `(N, H, W, C)`
            (quantized on the way in for int8/uint8 models) and labels as
            class indices `(N,)` or one-hot `(N, classes)`; arrays or tensors.
        limit: Stop after this many images. Defaults to `None` (all).
        num_threads: LiteRT interpreter threads. Defaults to LiteRT's choice.

    Returns:
        The fraction of images whose top class is the label.
    """
    runner = _TFLiteRunner(tflite_path, num_threads=num_threads)
    correct = total = 0
    for inputs, labels in batches:
        inputs = np.asarray(inputs, dtype=np.float32)
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(-1)
        for image, label in zip(inputs, labels):
            correct += int(np.argmax(runner(image[None])) == label)
            total += 1
            if limit is not None and total >= limit:
                return correct / total
    if not total:
        raise ValueError(f"No images to evaluate. Received: tflite_path={os.fspath(tflite_path)!r}")
    return correct / total
