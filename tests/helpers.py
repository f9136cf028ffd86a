"""What several test files share: running the package's programs as a user
would (in a subprocess), models with random BatchNorm statistics, hostile input."""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run_python(cwd, *args, env=None):
    """Runs `python ARGS` in `cwd` with an empty Keras cache and quiet TensorFlow."""
    env = {
        **os.environ,
        **(env or {}),
        "KERAS_HOME": str(Path(cwd) / "keras_home"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def run_cli(cwd, *args, env=None):
    """Runs `python -m keras_shufflenet.cli ARGS`, as the console script would."""
    return run_python(cwd, "-m", "keras_shufflenet.cli", *args, env=env)


def hostile_checkpoint(marker):
    """The bytes of a torch zip checkpoint whose pickle runs `touch marker`
    when unpickled naively (as `torch.load(weights_only=False)` would)."""

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1, "x": Payload()}, 2))
        archive.writestr("archive/byteorder", "little")
    return buffer.getvalue()


def randomize_batchnorm(model, seed=0):
    """BatchNorm statistics of order 1, so that every layer shows in the outputs."""
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
    return model
