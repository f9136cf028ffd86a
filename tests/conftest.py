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


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """The suite's one tiny model (`helpers.tiny_model`: a 64x64, 2-class
    ShuffleNetV2 0.5x whose top class changes from image to image), made once
    per session: `model.keras`, and its exports with `export_tflite`:
    `float.tflite` (float32), `int8.tflite` and `uint8.tflite` (full int8,
    int8 or uint8 input and output, calibrated on 16 random images).
    A dict of paths."""
    import numpy as np

    from helpers import tiny_model
    from keras_shufflenet.export import export_tflite

    folder = tmp_path_factory.mktemp("tiny_tflite")
    model = tiny_model()
    paths = {"model.keras": folder / "tiny_model.keras"}
    model.save(paths["model.keras"])
    paths["float.tflite"] = export_tflite(model, folder / "tiny_float.tflite", "float32")
    calibration = np.random.default_rng(2).uniform(0, 255, (16, 64, 64, 3)).astype("float32")
    for io_dtype in ("int8", "uint8"):
        paths[f"{io_dtype}.tflite"] = export_tflite(
            model, folder / f"tiny_{io_dtype}.tflite", "int8", calibration, io_dtype=io_dtype
        )
    return paths
