"""MediaPipe Tasks' ImageClassifier (the way apps classify images on Android,
iOS and the web; its Python package shares their C++ core) loads the exports
as they are and agrees with the LiteRT interpreter, naming the classes.

mediapipe pins absl-py ~=2.3 and the test extra's tensorflow-model-optimization
~=1.2, so MediaPipe runs in its own Python (tools/mediapipe-python.sh, which
.ci/run runs and names in KERAS_SHUFFLENET_MEDIAPIPE_PYTHON): the files are
exported and run with LiteRT here, classified there (tests/mediapipe_classify.py).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, randomize_batchnorm, tflite_outputs
from keras_shufflenet import _images, models
from keras_shufflenet.export import export_tflite

SIZE = 224
WORKER = Path(__file__).with_name("mediapipe_classify.py")
DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
DEFAULT_PYTHON = DEFAULT_VENV / "keras-shufflenet-mediapipe" / "bin" / "python"
GENERATED = ("circle", "square", "triangle")  # training.synthetic's first classes
# The README's Python MediaPipe block: skipped there, run here.
README_BLOCK = re.compile(
    r'<!-- skip: next "[^"]*test_mediapipe\.py[^"]*" -->\s*```python\n(.*?)```', re.S
)


@pytest.fixture(scope="module")
def mediapipe_python():
    """A Python that imports mediapipe: KERAS_SHUFFLENET_MEDIAPIPE_PYTHON (CI;
    it must work), else tools/mediapipe-python.sh's, else this one."""
    named = os.environ.get("KERAS_SHUFFLENET_MEDIAPIPE_PYTHON")
    candidates = [named] if named else [str(DEFAULT_PYTHON), sys.executable]
    for python in candidates:
        if python == sys.executable and importlib.util.find_spec("mediapipe") is not None:
            return python
        if python != sys.executable and Path(python).is_file():
            probe = subprocess.run([python, "-c", "import mediapipe"], capture_output=True)
            if probe.returncode == 0:
                return python
    if named:
        pytest.fail(f"KERAS_SHUFFLENET_MEDIAPIPE_PYTHON={named} cannot import mediapipe")
    pytest.skip("mediapipe is not installed: tools/mediapipe-python.sh prepares it (CI runs it)")


def _images_224(count=6):
    """The sample photos (resize 256, crop 224) and random pixels: RGB uint8."""
    photos = _images.load_images(sorted((ROOT / "samples").glob("*.jpg")), 256, SIZE)
    noise = np.random.default_rng(7).integers(0, 256, (count - len(photos), SIZE, SIZE, 3))
    return np.concatenate([photos, noise.astype(np.uint8)])[:count]


def _classify(python, images, paths, tmp_path):
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [python, str(WORKER), str(tmp_path / "images.npy"), str(tmp_path / "out.json"),
         *map(str, paths)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


def _litert_scores(path, images):
    """The interpreter's outputs on the pixels MediaPipe gets: uint8 bytes as
    they are for a uint8 input, float pixels in [0, 255] for a float one."""
    from ai_edge_litert.interpreter import Interpreter

    dtype = Interpreter(model_path=str(path)).get_input_details()[0]["dtype"]
    return tflite_outputs(path, images.astype(dtype)[:, None]).reshape(len(images), -1)


def _assert_agree(found, path, images, labels):
    assert "error" not in found, found.get("error")
    scores = _litert_scores(path, images)
    top1 = scores.argmax(axis=1)
    assert len(set(top1.tolist())) > 1, "the images must get different answers"
    for (index, name, _), best, row in zip(found["top1"], top1, scores):
        # The same class, or one that ties with it in LiteRT's (quantized) scores.
        assert row[index] == row[best], (path.name, index, best)
        assert name == labels[index], (path.name, index, name)
    assert found["metadata"]["labels"] == list(labels)
    assert found["metadata"]["mean"] == [0.0] and found["metadata"]["std"] == [1.0]


def _fit_head(model, images, classes, margin=8.0):
    """Sets the `predictions` layer so that image `i` scores `margin` more for
    `classes[i]` than for any other class (least squares on its features): a
    random network's classes nearly tie, and the few quantization steps by
    which MediaPipe's TFLite build and LiteRT differ in int8 would swap them."""
    import keras

    head = model.get_layer("predictions")
    features = keras.Model(model.inputs, head.input).predict(images.astype("float32"), verbose=0)
    centred = features - features.mean(axis=0)
    target = np.zeros((len(images), head.units), "float32")
    target[np.arange(len(images)), classes] = margin
    kernel = np.linalg.pinv(centred) @ (target - target.mean(axis=0))
    bias = target.mean(axis=0) - features.mean(axis=0) @ kernel
    head.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return model


def _imagenet_classifier(spec, images):
    """A 1000-class model with random weights and BatchNorm statistics fitted
    to `images`, and a head that tells the images apart (`_fit_head`)."""
    model = models.build_model(spec, weights=None, input_shape=(SIZE, SIZE, 3))
    randomize_batchnorm(model, seed=2, weights=True, data=images.astype("float32"))
    return _fit_head(model, images, [1, 207, 409, 530, 817, 950][: len(images)])


def _exports(model, folder, quantizations, calibration, **options):
    paths = []
    for quantization in quantizations:
        path = folder / f"{model.name}_{quantization}.tflite"
        data = calibration if quantization == "int8" else None
        paths.append(export_tflite(model, path, quantization, data, **options))
    return paths


@pytest.mark.parametrize("version", ["v2", pytest.param("v1", marks=pytest.mark.slow)])
def test_imagenet_exports_load_in_mediapipe_and_agree_with_litert(
    version, mediapipe_python, tmp_path
):
    from keras_shufflenet import _imagenet

    images = _images_224()
    spec = models.v2_spec(1.0) if version == "v2" else models.v1_spec(3, 1.0)
    model = _imagenet_classifier(spec, images)
    calibration = np.random.default_rng(3).uniform(0, 255, (10, SIZE, SIZE, 3)).astype("float32")
    calibration = np.concatenate([images.astype("float32"), calibration])
    # The default int8 export (uint8 in and out), float16 and float32.
    paths = _exports(model, tmp_path, ("int8", "float16", "float32"), calibration)
    report = _classify(mediapipe_python, images, paths, tmp_path)
    names = [name for _, name in _imagenet.class_index()]
    for path in paths:
        _assert_agree(report[str(path)], path, images, names)


def _fine_tuned(images):
    """A 3-class ShuffleNetV2 0.5x (a new head, as `training.finetune` leaves
    it) with random weights, BatchNorm statistics fitted to `images`."""
    model = models.build_model(models.v2_spec(0.5), weights=None, input_shape=(SIZE, SIZE, 3),
                               classes=len(GENERATED))  # fmt: skip
    randomize_batchnorm(model, seed=5, weights=True, data=images.astype("float32"))
    return _fit_head(model, images, np.arange(len(images)) % len(GENERATED))


def test_a_fine_tuned_model_names_its_classes_in_mediapipe(mediapipe_python, tmp_path):
    images = _images_224()
    model = _fine_tuned(images)
    calibration = np.concatenate([images, images[::-1]]).astype("float32")
    paths = _exports(model, tmp_path, ("int8", "float32"), calibration, labels=GENERATED)
    report = _classify(mediapipe_python, images, paths, tmp_path)
    for path in paths:
        _assert_agree(report[str(path)], path, images, GENERATED)


def test_without_labels_mediapipe_names_no_class(mediapipe_python, tmp_path):
    """Why the labels go into the file: without them (here, a 3-class model
    exported without `labels`), MediaPipe's categories have no name."""
    images = _images_224(3)
    model = _fine_tuned(images)
    (path,) = _exports(model, tmp_path, ("float32",), None)
    found = _classify(mediapipe_python, images, [path], tmp_path)[str(path)]
    assert "error" not in found, found.get("error")
    assert found["metadata"]["labels"] is None
    assert all(not name for _, name, _ in found["top1"])


def test_the_readme_mediapipe_example_runs(mediapipe_python, tmp_path):
    """The README's Python MediaPipe block, run in MediaPipe's Python on a
    float32 export of a 1000-class model named as the block names it."""
    readme = (ROOT / "README.md").read_text()
    block = README_BLOCK.search(readme)
    assert block, "README.md has no MediaPipe block"
    model = models.build_model(models.v2_spec(0.5), weights=None, input_shape=(SIZE, SIZE, 3))
    export_tflite(model, tmp_path / "snv2_int8.tflite", "int8",
                  _images_224().astype("float32").repeat(2, axis=0))  # fmt: skip
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    script = tmp_path / "readme_block.py"
    script.write_text(block.group(1))
    result = subprocess.run([mediapipe_python, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"\S+ \d\.\d\d", result.stdout), result.stdout
