"""What `import keras_shufflenet` does, seen from a fresh process."""

import inspect
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("program", [
    "'keras-shufflenet'", "'-m', 'training.finetune'", "'-m', 'tflite.convert'",
    "'-m', 'benchmarks.tflite_latency'",
])  # fmt: skip
def test_programs_import_no_tensorflow_before_their_logs_are_kept_out(tmp_path, program):
    result = _python(
        f"import sys\nsys.orig_argv = [sys.executable, {program}]\n"
        "import keras_shufflenet.cli, keras_shufflenet.logs\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]


def test_no_import_cycle_in_the_package():
    tool = ROOT / "tools" / "import_cycles.py"
    result = subprocess.run([sys.executable, str(tool), str(ROOT)], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0 and "import cycles: 0" in result.stdout, result.stdout


# The documented user API of each public module. A name added to or removed
# from a module's `__all__` fails here until this table (and the docs) say so.
PUBLIC_API = {
    "keras_shufflenet": [
        "ShuffleNetV1", "ShuffleNetV2", "count_macs", "count_params", "decode_predictions",
        "export_onnx", "export_tflite", "load_image", "load_images", "preprocess_input",
        "stage_outputs",
    ],
    "keras_shufflenet.cli": [
        "benchmark", "evaluate", "export", "main", "report", "run_reporting_errors",
    ],
    "keras_shufflenet.distribute": [
        "ResumableBackup", "average_logs_across_workers", "build_before_fit", "save_atomically",
    ],
    "keras_shufflenet.export": [
        "DEFAULT_OPSET", "IO_DTYPES", "OPSETS", "QUANTIZATIONS", "export_onnx", "export_tflite",
    ],
    "keras_shufflenet.hub": [
        "PRESETS", "ShuffleNetBackbone", "ShuffleNetImageClassifier",
        "ShuffleNetImageClassifierPreprocessor", "ShuffleNetImageConverter", "save_preset",
    ],
    "keras_shufflenet.layers": ["BatchNormalization", "ChannelShuffle", "ChannelSplit"],
    "keras_shufflenet.logs": ["FOREIGN_LINE", "quiet", "quiet_program", "verbose_requested"],
    "keras_shufflenet.models": [
        "STAGE_NAMES", "ShuffleNetSpec", "V1_ALPHAS", "V1_CHANNELS", "V1_GROUPS", "V2_ALPHAS",
        "V2_CHANNELS", "build_model", "spec_from_model", "v1_spec", "v2_spec",
    ],
    "keras_shufflenet.options": [
        "ACCELERATOR", "ADB", "ALPHA", "BENCHMARK_BINARY", "BENCHMARK_OPTIONS", "CALIBRATION_DIR",
        "CLASS_INDEX", "CROP", "EVALUATE_OPTIONS", "EXPORT_OPTIONS", "FORMAT", "GPU", "GROUPS",
        "IMAGES", "INPUT_SIZE", "IO_DTYPE", "JSON_OUT", "KERAS_MODEL", "LIMIT", "MODEL",
        "MODEL_OPTIONS", "NNAPI", "OPSET", "OP_PROFILING", "OUTPUT", "Option", "PHONE_OPTIONS",
        "QUANTIZATION", "RESIZE", "RUNS", "RUNTIME", "SERIAL", "TFLITE_OPTIONS", "THREADS",
        "VERBOSE", "WARMUP", "WEIGHTS", "XNNPACK", "add_arguments", "check_model_source",
        "class_names", "define_flags",
        "eval_size", "image_size", "load_model", "parse_weights", "spec_for", "values",
    ],
    "keras_shufflenet.quantization": ["ENGINES", "quantize_model", "quantize_scope", "tf_keras"],
    "keras_shufflenet.runtime": [
        "ACCELERATORS", "AcceleratorError", "BenchmarkError", "BenchmarkResult", "Comparison",
        "CompiledRun", "ModelScore", "benchmark_adb", "benchmark_interpreter",
        "benchmark_local", "compare_models", "load_class_index", "run_compiled",
        "save_class_names", "saved_class_names", "tflite_top1",
    ],
    "keras_shufflenet.weights": [
        "CheckpointError", "REGISTRY", "WEIGHTS_DIR_ENV", "WeightsEntry", "cache_dir",
        "get_entry", "load_torch_state_dict",
    ],
}  # fmt: skip


def test_each_public_module_exports_its_documented_api_and_no_more():
    import importlib

    for name, expected in PUBLIC_API.items():
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(expected), name
        for attribute in module.__all__:
            assert getattr(module, attribute) is not None, f"{name}.{attribute}"
        # No other public name: what is not in `__all__` is a submodule or starts with "_".
        extra = {
            attribute for attribute, value in vars(module).items()
            if not attribute.startswith("_") and attribute not in module.__all__
            and not inspect.ismodule(value)
        }  # fmt: skip
        assert not extra, f"{name} has public names outside __all__: {sorted(extra)}"


def test_the_top_level_lists_its_api_and_subpackages_only(tmp_path):
    result = _python("import keras_shufflenet\nprint(' '.join(dir(keras_shufflenet)))", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    public = {name for name in result.stdout.split() if not name.startswith("_")}
    subpackages = {"distribute", "export", "hub", "layers", "logs", "models", "options", "quantization",
                   "runtime", "weights"}  # fmt: skip
    assert public == set(PUBLIC_API["keras_shufflenet"]) | subpackages
    assert not {"importlib", "os", "sys"} & set(result.stdout.split())


def test_front_ends_import_public_names_only():
    """`training/`, `tflite/` and `benchmarks/` import no private module or
    name of the package (tests may: they are white-box)."""
    import ast

    private = []
    for folder in ("training", "tflite", "benchmarks"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_shufflenet"):
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names if a.name.startswith("keras_shufflenet")]
                else:
                    continue
                private += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                            if any(part.startswith("_") for part in n.split("."))]  # fmt: skip
    assert not private, private
