"""What `import keras_shufflenet` does, seen from a fresh process."""

import subprocess
import sys

from helpers import ROOT


def _python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)  # fmt: skip


def test_a_saved_model_loads_after_import_keras_shufflenet_alone(tmp_path):
    import keras_shufflenet as ks

    path = tmp_path / "m.keras"
    ks.ShuffleNetV1(groups=3, alpha=0.25, weights=None, input_shape=(32, 32, 3), classes=3).save(path)
    result = _python(
        "import keras_shufflenet, keras\n"  # no other name of the package is touched
        f"m = keras.saving.load_model({str(path)!r})\n"
        "print(type(m.get_layer('stage2_unit2_shuffle')).__name__)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ChannelShuffle"]


def test_the_command_line_imports_no_tensorflow_before_it_runs(tmp_path):
    result = _python(
        "import sys\nsys.orig_argv = [sys.executable, 'keras-shufflenet']\n"
        "import keras_shufflenet.cli\nprint('tensorflow' in sys.modules, 'keras' in sys.modules)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]


def test_no_import_cycle_in_the_package():
    tool = ROOT / "tools" / "import_cycles.py"
    result = subprocess.run([sys.executable, str(tool), str(ROOT)], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0 and "import cycles: 0" in result.stdout, result.stdout
