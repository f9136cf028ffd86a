"""Models on a folder of labelled images: top-1, top-5, and agreement with Keras.

`compare_models` loads each image once (resize, then centre crop, as the
reference models were evaluated) and feeds it to a Keras model and to any
number of exported files (`.tflite` through the LiteRT interpreter, `.onnx`
through onnxruntime; see `_runners`), and reports for each its top-1 and
top-5 accuracy on the labelled images (top-5 for more than 5 classes only), how often its top-1 class agrees with
the Keras model's, and the mean and largest output difference.

Image folders are either flat (no labels) or hold one sub-folder per class:

- with a class index (`load_class_index`: the classes in index order), the
  sub-folders are named by those classes;
- sub-folders named by WordNet id (`n01440764`, ...) and a 1000-class model:
  the labels are the ImageNet class indices (`_imagenet.class_index()`);
- otherwise, as many sub-folders as the model has classes: sorted order;
- otherwise no labels (agreement and differences are still reported).

A class folder that the index does not hold is an error, and so is an image
that cannot be read. Images lying next to class sub-folders have no label.
"""

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from keras_shufflenet import _formats, _imagenet, _images, _progress, _table
from keras_shufflenet._class_names import load_class_index  # noqa: F401 - public in runtime
from keras_shufflenet.runtime import _runners

WNID = re.compile(r"n\d{8}")
BATCH = 32
TOP_K = 5  # top-5 accuracy, reported where the model has more classes


def class_labels(folder_names, num_classes, class_index=None):
    """Label of each class folder name, and where the labels come from.

    Returns:
        `({name: label}, source)` with source `"class index"`, `"imagenet"` or
        `"folders"`, or `({}, None)` when nothing says which class a folder is.

    Raises:
        ValueError: a folder the class index (or ImageNet's) does not hold.
    """
    names = sorted(folder_names)
    if not names:
        return {}, None
    if class_index is not None:
        if len(class_index) != num_classes:
            raise ValueError(
                f"The class index names {len(class_index)} classes and the model has "
                f"{num_classes}. Received: {len(class_index)} classes"
            )
        return _indexed(names, {name: i for i, name in enumerate(class_index)}, "class index")
    if num_classes == _imagenet.NUM_CLASSES and all(WNID.fullmatch(n) for n in names):
        index = {wnid: i for i, (wnid, _) in enumerate(_imagenet.class_index())}
        return _indexed(names, index, "imagenet")
    if len(names) == num_classes:
        return {n: i for i, n in enumerate(names)}, "folders"
    return {}, None


def _indexed(names, index, source):
    unknown = [name for name in names if name not in index]
    if unknown:
        raise ValueError(
            f"Class folders must be classes of the {source}. Received unknown classes: "
            f"{', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
        )
    return {name: index[name] for name in names}, source


def find_images(image_dir, num_classes, class_index=None):
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
    mapping, source = class_labels(classes, num_classes, class_index)
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
    runner = _runners.TFLiteRunner(tflite_path, num_threads=num_threads)
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


# ------------------------------------------------- several models side by side


@dataclasses.dataclass
class ModelScore:
    """How one model did (accuracies are fractions; `None` without labels, and
    top-5 `None` for a model of 5 classes or fewer, where it is always 1)."""

    name: str
    kind: str
    top1: float | None
    top5: float | None
    agreement: float
    mean_abs_error: float
    max_abs_error: float


@dataclasses.dataclass
class Comparison:
    """Every model's score on the same images (of a model of `classes` classes)."""

    images: int
    labeled: int
    label_source: str | None
    resize: int
    crop: int
    scores: list
    classes: int

    def to_dict(self):
        return dataclasses.asdict(self)

    def table(self):
        """The scores side by side, with the images and preprocessing used
        (no top-5 column for 5 classes or fewer)."""
        source = f", labels from {self.label_source}" if self.label_source else ""
        top5 = self.classes > TOP_K
        header = ("model", "kind", "top-1", *(["top-5"] if top5 else []), "top-1 = Keras",
                  "mean |diff|", "max |diff|")  # fmt: skip
        rows = [
            (
                s.name, s.kind, _percent(s.top1), *([_percent(s.top5)] if top5 else []),
                _percent(s.agreement), f"{s.mean_abs_error:.3g}", f"{s.max_abs_error:.3g}",
            )  # fmt: skip
            for s in self.scores
        ]
        return "\n".join([
            f"{self.images} images ({self.labeled} labelled{source}), "
            f"resize {self.resize} -> centre crop {self.crop}",
            *_table.aligned(header, rows),
        ])  # fmt: skip


def _percent(value):
    return "-" if value is None else f"{value * 100:.2f}%"


def check_model_files(paths):
    """Each path exists and is a file of a format that runs (`.tflite`, `.onnx`)."""
    from keras_shufflenet import _files

    for path in paths:
        _files.existing_file(path, _formats.RUNNABLE_SUFFIXES, "model", "exported model")


def compare_models(keras_model, model_paths, image_dir, resize=256, crop=224, limit=None,
                   class_index=None, progress=False):
    """Scores `keras_model` and the files `model_paths` on the same images.

    Args:
        keras_model: The Keras model (float) the files were exported from.
        model_paths: `.tflite` and `.onnx` files (any number, maybe none).
        image_dir: A folder of images, or of one sub-folder per class (see
            `find_images`: WordNet ids, a class index, or sorted names).
        resize: Shorter side before the centre crop. Defaults to `256`.
        crop: Side of the centre crop (the models' input). Defaults to `224`.
        limit: At most this many images, in sorted order. Defaults to `None`.
        class_index: Class names in index order (see `load_class_index`),
            for folders named by class. Defaults to `None`.
        progress: A progress bar over the images on stderr. Defaults to `False`.

    Returns:
        A `Comparison`, the Keras model first.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be a positive integer or None. Received: limit={limit!r}")
    check_model_files(model_paths)
    num_classes = int(keras_model.output_shape[-1])
    paths, labels, source = find_images(image_dir, num_classes, class_index)
    paths, labels = paths[:limit], labels[:limit]
    runners = [_formats.runner_for(path) for path in model_paths]
    _check_input_sizes(keras_model, model_paths, runners, crop)
    names = ["keras", *(Path(p).name for p in model_paths)]
    kinds = ["keras", *(runner.kind for runner in runners)]
    calls = [_runners.keras_runner(keras_model), *runners]
    preprocess = not _runners.has_preprocessing(keras_model)
    top = [[] for _ in calls]
    sums, maxima = np.zeros(len(calls)), np.zeros(len(calls))
    bar = _progress.StderrProgbar(len(paths), "image") if progress else _progress.NoProgress()
    for start in range(0, len(paths), BATCH):
        x = _images.load_images(paths[start : start + BATCH], resize, crop).astype(np.float32)
        if preprocess:
            x = _imagenet.preprocess_input(x, include_preprocessing=False)
        outputs = [_checked_output(call(x), name, num_classes) for call, name in zip(calls, names)]
        for i, y in enumerate(outputs):
            top[i].append(np.argsort(-y, axis=-1, kind="stable")[:, :TOP_K])
            difference = np.abs(y - outputs[0])
            sums[i] += difference.sum() / y.shape[-1]
            maxima[i] = max(maxima[i], float(difference.max()))
        bar.update(min(start + BATCH, len(paths)))
    labeled = np.array([label is not None for label in labels])
    truth = np.array([label for label in labels if label is not None])
    keras_top1 = np.concatenate(top[0])[:, 0]
    top5 = num_classes > TOP_K
    scores = []
    for name, kind, ranks, total, largest in zip(names, kinds, top, sums, maxima):
        ranks = np.concatenate(ranks)
        hits = ranks[labeled] == truth[:, None] if labeled.any() else None
        scores.append(ModelScore(
            name=name, kind=kind,
            top1=float(hits[:, 0].mean()) if hits is not None else None,
            top5=float(hits.any(axis=1).mean()) if hits is not None and top5 else None,
            agreement=float(np.mean(ranks[:, 0] == keras_top1)),
            mean_abs_error=float(total / len(paths)), max_abs_error=largest,
        ))  # fmt: skip
    return Comparison(
        images=len(paths), labeled=int(labeled.sum()),
        label_source=source if labeled.any() else None, resize=resize, crop=crop, scores=scores,
        classes=num_classes,
    )  # fmt: skip


def _check_input_sizes(keras_model, model_paths, runners, crop):
    for path, runner in zip(model_paths, runners):
        if any(d is not None and d != crop for d in runner.input_size):
            height, width = runner.input_size
            raise ValueError(
                f"{Path(path).name} takes {height}x{width} images but `crop` is {crop}; pass "
                f"crop={height} (and a matching resize). Received: crop={crop}"
            )
    keras_size = tuple(keras_model.input_shape[1:3])
    if any(d is not None and d != crop for d in keras_size):
        raise ValueError(
            f"The Keras model takes {keras_size} images but `crop` is {crop}. Received: crop={crop}"
        )


def _checked_output(y, name, num_classes):
    y = np.asarray(y, np.float32).reshape(len(y), -1)
    if y.shape[-1] != num_classes:
        raise ValueError(
            f"{name} has {y.shape[-1]} outputs and the Keras model {num_classes}; they are not "
            f"the same model. Received: {name}"
        )
    return y
