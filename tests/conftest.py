import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

# torchvision pulls in triton, whose LLVM crashes the process when it loads
# after TensorFlow's; loading it first is safe.
try:
    import torchvision  # noqa: E402, F401
except ImportError:
    pass


@pytest.fixture(autouse=True)
def isolated_keras_home(tmp_path, monkeypatch):
    """Every test gets its own empty Keras cache and no local weights folder."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KERAS_SHUFFLENET_WEIGHTS_DIR", raising=False)


def _shared_folder(tmp_path_factory, name):
    """A folder under the session's temporary root that every pytest-xdist
    worker of this run sees (each worker has its own `getbasetemp()`, whose
    parent is the run's), so that an expensive fixture is made once per run."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root / name


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """The suite's one tiny model (`helpers.tiny_model`: a 64x64, 2-class
    ShuffleNetV2 0.5x whose top class changes from image to image), made once
    per test run (shared by the xdist workers through a file lock):
    `model.keras`, and its exports with `export_tflite`: `float.tflite`
    (float32), `int8.tflite` and `uint8.tflite` (full int8, int8 or uint8
    input and output, calibrated on 16 random images). A dict of paths."""
    from filelock import FileLock

    folder = _shared_folder(tmp_path_factory, "tiny_tflite")
    paths = {
        "model.keras": folder / "tiny_model.keras",
        "float.tflite": folder / "tiny_float.tflite",
        "int8.tflite": folder / "tiny_int8.tflite",
        "uint8.tflite": folder / "tiny_uint8.tflite",
    }
    with FileLock(f"{folder}.lock"):
        if not (folder / "complete").exists():
            _make_tiny_tflite(folder, paths)
            (folder / "complete").touch()
    return paths


def _make_tiny_tflite(folder, paths):
    import numpy as np

    from helpers import tiny_model
    from keras_shufflenet.export import export_tflite

    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    model.save(paths["model.keras"])
    export_tflite(model, paths["float.tflite"], "float32")
    calibration = np.random.default_rng(2).uniform(0, 255, (16, 64, 64, 3)).astype("float32")
    for io_dtype in ("int8", "uint8"):
        export_tflite(model, paths[f"{io_dtype}.tflite"], "int8", calibration, io_dtype=io_dtype)
