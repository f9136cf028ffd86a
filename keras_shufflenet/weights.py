"""Registry of published ImageNet weights, and their fetching and caching.

The reference checkpoints (torchvision for V2, pytorchcv for V1) are fetched
with `keras.utils.get_file` into a temporary folder, checked against their
hash, converted once to Keras `.weights.h5` files (with and without the
classifier) and only then moved into the Keras cache. A file with a wrong
hash, a broken download or a failed conversion leaves nothing behind.
`KERAS_SHUFFLENET_WEIGHTS_DIR` names a folder holding the original files, for
machines without internet.
"""

import dataclasses
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import keras

from keras_shufflenet.checkpoints import convert, torch_reader

WEIGHTS_DIR_ENV = "KERAS_SHUFFLENET_WEIGHTS_DIR"
# The largest reference checkpoint (V2 2.0x) is about 30 MB.
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024
TORCHVISION_URL = "https://download.pytorch.org/models/"
PYTORCHCV_URL = "https://github.com/osmr/imgclsmob/releases/download/"


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One published checkpoint and what is known about it.

    Attributes:
        name: Registry name, also the stem of the cached `.weights.h5` file.
        version: `"v1"` or `"v2"`.
        alpha: Width multiplier.
        groups: V1 group count (`None` for V2).
        url: Where the reference file is published.
        checkpoint: Name of the `.pth` file (inside the zip for pytorchcv).
        file_hash: Hex digest of the `.pth` file, or its published prefix.
        hash_algorithm: `"sha256"` or `"sha1"`.
        params: Trainable parameters of the full model.
        macs: Multiply-adds at 224x224 as published by the source, or `None`.
        top1: Published ImageNet top-1 accuracy (%).
        top5: Published ImageNet top-5 accuracy (%).
        resize: Evaluation resize of the shorter side.
        crop: Evaluation centre crop.
    """

    name: str
    version: str
    alpha: float
    groups: int | None
    url: str
    checkpoint: str
    file_hash: str
    hash_algorithm: str
    params: int
    macs: int | None
    top1: float
    top5: float
    resize: int = 256
    crop: int = 224

    @property
    def key(self):
        return (self.version, self.alpha, self.groups)


def _torchvision(alpha, checkpoint, params, macs, top1, top5, resize):
    return WeightsEntry(
        name=checkpoint.rsplit("-", 1)[0],
        version="v2",
        alpha=alpha,
        groups=None,
        url=TORCHVISION_URL + checkpoint,
        checkpoint=checkpoint,
        file_hash=checkpoint.rsplit("-", 1)[1].split(".")[0],
        hash_algorithm="sha256",
        params=params,
        macs=macs,
        top1=top1,
        top5=top5,
        resize=resize,
    )


def _pytorchcv(name, groups, alpha, params, macs, top1_err, top5_err, sha1, tag):
    checkpoint = f"{name}-{top5_err:04d}-{sha1[:8]}.pth"
    return WeightsEntry(
        name=name,
        version="v1",
        alpha=alpha,
        groups=groups,
        url=f"{PYTORCHCV_URL}{tag}/{checkpoint}.zip",
        checkpoint=checkpoint,
        file_hash=sha1,
        hash_algorithm="sha1",
        params=params,
        macs=macs,
        top1=round(100 - top1_err, 2),
        top5=round(100 - top5_err / 100, 2),
    )


# torchvision: file names carry the SHA-256 prefix; MACs from its model cards.
# pytorchcv: errors from its model table (the file name carries the top-5 error
# x100). MACs from the V1 paper's Table 1, which gives them for 1x only
# (pytorchcv's FLOPs count every layer, so they are not comparable).
REGISTRY = (
    _torchvision(0.5, "shufflenetv2_x0.5-f707e7126e.pth", 1_366_792, 40_500_000, 60.552, 81.746, 256),
    _torchvision(1.0, "shufflenetv2_x1-5666bf0f80.pth", 2_278_604, 144_900_000, 69.362, 88.316, 256),
    _torchvision(1.5, "shufflenetv2_x1_5-3c479a10.pth", 3_503_624, 295_800_000, 72.996, 91.086, 232),
    _torchvision(2.0, "shufflenetv2_x2_0-8be3c8ee.pth", 7_393_996, 583_300_000, 76.230, 93.006, 232),
    _pytorchcv("shufflenet_g1_wd4", 1, 0.25, 209_746, None, 62.44, 3729, "47dbd0f279da6d3056079bb79ad39cabbb3b9415", "v0.0.134"),
    _pytorchcv("shufflenet_g3_wd4", 3, 0.25, 305_902, None, 61.74, 3653, "6abdd65e087e71f80345415cdf7ada6ed2762d60", "v0.0.135"),
    _pytorchcv("shufflenet_g1_wd2", 1, 0.5, 534_484, None, 46.59, 2261, "dae4bdadd7d48bee791dff2a08cd697cff0e9320", "v0.0.174"),
    _pytorchcv("shufflenet_g3_wd2", 3, 0.5, 718_324, None, 44.16, 2080, "ccaacfc8d9ac112c6143269df6e258fd55b662a7", "v0.0.167"),
    _pytorchcv("shufflenet_g1_w3d4", 1, 0.75, 975_214, None, 39.58, 1711, "161cd24aa0b2e2afadafa69b44a28af222f2ec7a", "v0.0.218"),
    _pytorchcv("shufflenet_g3_w3d4", 3, 0.75, 1_238_266, None, 38.2, 1650, "3f3b0aef0ce3174c78ff42cf6910c6e34540fc41", "v0.0.219"),
    _pytorchcv("shufflenet_g1_w1", 1, 1.0, 1_531_936, 143_000_000, 34.93, 1389, "4cfb65a30761fe548e0b5afbb5d89793ec41e4e9", "v0.0.223"),
    _pytorchcv("shufflenet_g2_w1", 2, 1.0, 1_733_848, 140_000_000, 34.25, 1363, "07256203e217a7b31f1c69a5bd38a6674bce75bc", "v0.0.241"),
    _pytorchcv("shufflenet_g3_w1", 3, 1.0, 1_865_728, 137_000_000, 34.39, 1348, "ce54f64ecff87556a4303380f46abaaf649eb308", "v0.0.244"),
    _pytorchcv("shufflenet_g4_w1", 4, 1.0, 1_968_344, 133_000_000, 34.19, 1335, "e2415f8270a4b6cbfe7dc97044d497edbc898577", "v0.0.245"),
    _pytorchcv("shufflenet_g8_w1", 8, 1.0, 2_434_768, 137_000_000, 34.06, 1342, "9a979b365424addba75c559a61a77ac7154b26eb", "v0.0.250"),
)


def _spec_key(spec):
    return (spec.version, spec.alpha, spec.groups if spec.version == "v1" else None)


def _describe(key):
    version, alpha, groups = key
    if version == "v2":
        return f"alpha={alpha:g}"
    return f"groups={groups}, alpha={alpha:g}"


def get_entry(spec):
    """The registry entry for `spec`; a ValueError lists those that exist."""
    key = _spec_key(spec)
    for entry in REGISTRY:
        if entry.key == key:
            return entry
    published = "; ".join(_describe(e.key) for e in REGISTRY if e.version == spec.version)
    raise ValueError(
        f"No ImageNet weights are published for ShuffleNet{spec.version.upper()} "
        f"with {_describe(key)}. Published: {published}. Use `weights=None` or a "
        f"file path. Received: weights='imagenet'"
    )


WEIGHT_SUFFIXES = (".weights.h5", ".keras", ".pth", ".pt")


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


def load_weights(model, spec, weights):
    """Loads `"imagenet"` or a file (Keras or reference torch) into `model`."""
    if weights == "imagenet":
        include_top = "predictions" in {layer.name for layer in model.layers}
        model.load_weights(imagenet_weights_path(get_entry(spec), include_top))
        return
    path = os.fspath(weights)
    if path.endswith((".pth", ".pt")):
        state_dict = torch_reader.load_torch_state_dict(path)
        convert.assign_state_dict(model, spec, state_dict, source=path)
    else:
        model.load_weights(path)


def cache_dir():
    """Where converted weights live: `$KERAS_HOME/models/keras_shufflenet`."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "models" / "keras_shufflenet"


def imagenet_weights_path(entry, include_top=True):
    """Path of the cached `.weights.h5` for `entry`, fetched and converted once."""
    suffix = ".weights.h5" if include_top else "_notop.weights.h5"
    target = cache_dir() / f"{entry.name}{suffix}"
    if not target.exists():
        _convert_to_cache(entry)
    return target


def _convert_to_cache(entry):
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".incoming-") as tmp:
        checkpoint = _fetch_checkpoint(entry, Path(tmp))
        try:
            state_dict = torch_reader.load_torch_state_dict(checkpoint)
            staged = []
            for include_top, suffix in ((True, ".weights.h5"), (False, "_notop.weights.h5")):
                model = _model_for(entry, include_top)
                convert.assign_state_dict(model, _spec_for(entry), state_dict, source=entry.checkpoint)
                path = Path(tmp) / f"{entry.name}{suffix}"
                model.save_weights(path)
                staged.append((path, target_dir / path.name))
        except torch_reader.CheckpointError as error:
            raise torch_reader.CheckpointError(
                f"The {entry.name} weights ({entry.url}) could not be converted: "
                f"{error}. Nothing was cached."
            ) from error
        # Both files are complete before either becomes visible.
        for path, final in staged:
            os.replace(path, final)


def _spec_for(entry):
    from keras_shufflenet import specs

    if entry.version == "v2":
        return specs.v2_spec(entry.alpha)
    return specs.v1_spec(entry.groups, entry.alpha)


def _model_for(entry, include_top):
    from keras_shufflenet import builder

    return builder.build_model(_spec_for(entry), weights=None, include_top=include_top)


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
