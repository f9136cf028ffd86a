"""Loading weights into a model the caller built: published ImageNet weights
(fetched, hash-checked, converted once and cached) or a file.

The reference checkpoints (torchvision for V2, pytorchcv for V1) are fetched
with `keras.utils.get_file` into a temporary folder, checked against their
hash, converted into the caller's model and saved from it as Keras
`.weights.h5` files (with the classifier when the model has one, and
without), which only then move into the Keras cache. A wrong hash, a broken
download or a failed conversion leaves nothing behind.
`KERAS_SHUFFLENET_WEIGHTS_DIR` names a folder holding the original files, for
machines without internet. This module never builds a model.
"""

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import keras

from keras_shufflenet.weights import _keras_files, _torch_names, _torch_reader
from keras_shufflenet.weights._registry import get_entry

WEIGHTS_DIR_ENV = "KERAS_SHUFFLENET_WEIGHTS_DIR"
# The largest reference checkpoint (V2 2.0x) is about 30 MB.
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024
KERAS_SUFFIXES = (".weights.h5", ".keras")
TORCH_SUFFIXES = (".pth", ".pt")
WEIGHT_SUFFIXES = KERAS_SUFFIXES + TORCH_SUFFIXES
HEAD = "predictions"


def check_weights_argument(weights):
    """Accepts `None`, `"imagenet"` or the path of an existing weights file."""
    if weights is None or weights == "imagenet":
        return
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if path.endswith(WEIGHT_SUFFIXES) and os.path.isfile(path):
            return
        if not os.path.isfile(path):
            raise ValueError(
                "The `weights` argument should be `None`, 'imagenet' or the path "
                f"to an existing weights file. No file exists at that path. "
                f"Received: weights={path!r}"
            )
    raise ValueError(
        "The `weights` argument should be `None`, 'imagenet' or the path to a "
        f"weights file ending in one of {', '.join(WEIGHT_SUFFIXES)}. "
        f"Received: weights={weights!r}"
    )


def load_weights(model, spec, weights, *, features=None):
    """Loads `"imagenet"` or a file (Keras or reference torch) into `model`.

    Args:
        model: The model `spec` describes, built by the caller.
        spec: Its spec (`weights_key`, `checkpoint_format`, `describe()`).
        weights: `"imagenet"` or a path (see `check_weights_argument`).
        features: The model's feature map (the backbone output); with it, a
            conversion of ImageNet weights into a model with the classifier
            also caches the file without it.
    """
    if weights == "imagenet":
        _load_imagenet(model, spec, features)
        return
    path = os.fspath(weights)
    if path.endswith(TORCH_SUFFIXES):
        state_dict = _torch_reader.load_torch_state_dict(path)
        _torch_names.assign_state_dict(model, spec, state_dict, source=path)
    else:
        _keras_files.load_keras_weights(model, path)


def cache_dir():
    """Where converted weights live: `$KERAS_HOME/models/keras_shufflenet`."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "models" / "keras_shufflenet"


def _cached_name(entry, include_top):
    return f"{entry.name}{'' if include_top else '_notop'}.weights.h5"


def _load_imagenet(model, spec, features):
    entry = get_entry(spec)
    include_top = HEAD in {layer.name for layer in model.layers}
    cached = cache_dir() / _cached_name(entry, include_top)
    if cached.exists():
        model.load_weights(cached)
        return
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".incoming-") as tmp:
        checkpoint = _fetch_checkpoint(entry, Path(tmp))
        try:
            state_dict = _torch_reader.load_torch_state_dict(checkpoint)
            _torch_names.assign_state_dict(model, spec, state_dict, source=entry.checkpoint)
        except _torch_reader.CheckpointError as error:
            raise _torch_reader.CheckpointError(
                f"The {entry.name} weights ({entry.url}) could not be converted: "
                f"{error}. Nothing was cached."
            ) from error
        staged = [(model, _cached_name(entry, include_top))]
        if include_top and features is not None:
            # The backbone of the same model, its layers shared: the file that
            # include_top=False models load.
            backbone = keras.Model(model.inputs, features, name=f"{model.name}_notop")
            staged.append((backbone, _cached_name(entry, False)))
        for source, name in staged:
            source.save_weights(Path(tmp) / name)
        # Every file is complete before any becomes visible.
        for _, name in staged:
            os.replace(Path(tmp) / name, target_dir / name)


def _fetch_checkpoint(entry, tmp):
    """The verified `.pth` of `entry` inside `tmp`, from the local folder or the web."""
    archive = _local_file(entry) or _download(entry, tmp)
    if archive.name.endswith(".zip"):
        archive = _extract_member(archive, entry.checkpoint, tmp)
    _verify_hash(archive, entry)
    return archive


def _local_file(entry):
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if not folder:
        return None
    for name in (entry.checkpoint, os.path.basename(entry.url)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{WEIGHTS_DIR_ENV}={folder!r} does not hold the weights of {entry.name}: "
        f"expected {entry.checkpoint!r} or {os.path.basename(entry.url)!r} there."
    )


def _download(entry, tmp):
    fname = os.path.basename(entry.url)
    try:
        path = keras.utils.get_file(
            fname=fname, origin=entry.url, cache_dir=str(tmp), cache_subdir="."
        )
    except Exception as error:  # get_file raises a bare Exception
        raise OSError(
            f"Could not download the {entry.name} weights from {entry.url}: {error}. "
            f"On a machine without internet, put {fname!r} in a folder named by "
            f"{WEIGHTS_DIR_ENV}."
        ) from error
    return Path(path)


def _extract_member(archive, member, tmp):
    try:
        with zipfile.ZipFile(archive) as zf:
            if member not in zf.namelist():
                raise ValueError(
                    f"{archive} should contain {member!r}. Received members: {zf.namelist()}"
                )
            size = zf.getinfo(member).file_size
            if size > MAX_CHECKPOINT_BYTES:
                raise ValueError(
                    f"{member} in {archive} unpacks to {size} bytes, more than any "
                    f"ShuffleNet checkpoint ({MAX_CHECKPOINT_BYTES}). Received: {size} bytes"
                )
            return Path(zf.extract(member, path=tmp / "extracted"))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{archive} is not a valid zip archive: {error}") from error


def file_digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_hash(path, entry):
    actual = file_digest(path, entry.hash_algorithm)
    if not actual.startswith(entry.file_hash):
        raise ValueError(
            f"The {entry.hash_algorithm} hash of {path.name} does not match the "
            f"published weights of {entry.name}: expected {entry.file_hash}..., "
            f"got {actual}. The file is corrupt or not the published one; "
            "nothing was cached."
        )
