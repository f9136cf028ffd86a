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
