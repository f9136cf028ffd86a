"""The class names that go with a model: read from a class-index file, and
saved next to a model file.

A fine-tuned model's class names are saved next to it as `STEM.labels.txt`,
one name a line in output order (`model.keras` and `model.weights.h5` share
`model.labels.txt`), the format of MediaPipe's label files; `evaluate`,
`export` (the names go into the `.tflite` metadata) and `predict` read them
when the model comes from that file, and `--class-index` overrides them.
"""

import json
import os
from pathlib import Path

from keras_shufflenet import _files

LABELS_SUFFIX = ".labels.txt"
_MODEL_SUFFIXES = (".keras", ".weights.h5", ".h5")


def load_class_index(path):
    """Class names in index order from a file: a JSON list of names, a JSON
    object `{"0": name or [id, name], ...}` (keras.applications' ImageNet
    format: the id names the folder), or a text file with one name per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No class-index file exists at that path. Received: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        try:
            table = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}). Received: {path}") from None
        if isinstance(table, dict):
            try:
                ordered = [table[str(i)] for i in range(len(table))]
            except KeyError:
                raise ValueError(
                    f"A JSON class index maps the indices 0..N-1 to names. Received: keys "
                    f"{sorted(table)[:5]} in {path}"
                ) from None
            names = [v[0] if isinstance(v, list) else v for v in ordered]
        else:
            names = table
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError(
            f"Expected a class index of distinct class names. Received: {len(names)} entries "
            f"in {path}"
        )
    return names


def class_names_path(model_path):
    """Where the class names of `model_path` are saved: `STEM.labels.txt` beside it."""
    path = Path(model_path)
    name = path.name
    for suffix in _MODEL_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + LABELS_SUFFIX)


def save_class_names(model_path, names):
    """Writes `names` (in output order) beside `model_path`, atomically;
    returns the path written."""
    names = list(names)
    if not names or not all(isinstance(n, str) and n.strip() == n and n and "\n" not in n
                            for n in names) or len(set(names)) != len(names):  # fmt: skip
        raise ValueError(
            "Class names must be distinct non-empty strings without surrounding spaces or "
            f"newlines. Received: names={names[:5]!r}"
        )
    path = class_names_path(model_path)
    with _files.atomic_output(path) as staged:
        staged.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return path


def saved_class_names(model_path):
    """The class names saved beside `model_path`, or `None` when there are none."""
    if model_path is None:
        return None
    path = class_names_path(os.fspath(model_path))
    return load_class_index(path) if path.is_file() else None
