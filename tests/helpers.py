"""Running the package's programs as a user would: in a subprocess."""

import os
import subprocess
import sys
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
