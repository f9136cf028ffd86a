"""Every program prints its own lines and nothing else: the `keras-shufflenet`
command, `tflite/`, `training/` and `benchmarks/` each run in a subprocess as a
user runs them (no `TF_CPP_MIN_LOG_LEVEL`), and every line of their output must
match the program's own patterns (a whitelist: a new line from TensorFlow, the
converter or LiteRT fails here; `keras_shufflenet.logs` keeps them out). Then
the end-to-end run of issue 19 through the command line: fine-tune on generated
classes, export int8, float32 and ONNX, evaluate, benchmark."""

import json

import numpy as np
import pytest
from PIL import Image

from helpers import PROGRESS_BAR, foreign_lines, run_as_user

# What each program prints.
EXPORT = [r"wrote \S+ \(\d+\.\d\d MB, [^)]+\)"]
PERCENT = r"(\d+\.\d\d%|-)"
EVALUATE = [
    r"\d+ images \(\d+ labelled(, labels from [a-z ]+)?\), resize \d+ -> centre crop \d+",
    r"model +kind +top-1( +top-5)? +top-1 = Keras +mean \|diff\| +max \|diff\|",
    r"[- ]+",
    rf"\S+ +(keras|tflite \w+|onnx) +{PERCENT}( +{PERCENT})? +\d+\.\d\d% +[\d.e+-]+ +[\d.e+-]+",
]
BENCHMARK = [
    r"model +runtime +threads +size \(MB\) +median ms +p5 ms +p95 ms +accelerated",
    r"[- ]+",
    r"\S+\.tflite +(compiled|interpreter) cpu +\d+( +\d+\.\d\d){4} +"
    r"XNNPACK \d+ partitions?, \d+/\d+ ops",
]
FINETUNE = [
    r"Phase 1: new head, backbone frozen \(\d+ epochs\)",
    r"Phase 2: everything trainable \(\d+ epochs\)",
    r"validation top-1 \d\.\d{4} \(after the frozen phase: (\d\.\d+|None)\)",
    r"wrote \S+\.keras and \S+\.weights\.h5",
    r"Phase 3: quantization-aware training \(\d+ epochs, (keras|tfmot)\)",
    r"validation top-1 after QAT \d\.\d{4}; wrote \S+\.tflite \(full int8\)",
    PROGRESS_BAR,
]

# tf_keras' progress bar (training.qat): "2/2 [=====] - 27s 5s/step - loss: 1.08 - top1: 0.37"
TF_KERAS_PROGRESS = r"\d+/\d+ \[[=>.]+\] - .*"


def _check(result, *own):
    """`result` succeeded and printed only lines that match `own`."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert foreign_lines(result.stdout, *own) == []
    assert foreign_lines(result.stderr, PROGRESS_BAR) == []  # errors, bars: none here
    return result


def _images(folder, count, size, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(folder / f"{i}.png")
    return folder


def _class_folders(root, classes=3, per_class=8, size=32, seed=0):
    """`root/{train,val}/CLASS/*.jpg`: the generated shapes of `training.synthetic`."""
    from training import synthetic

    for split, offset in (("train", 1), ("val", 2)):
        images, labels = synthetic.make_dataset(per_class * classes, size, classes, seed + offset)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / synthetic.CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.jpg", quality=95)
    return root / "train", root / "val"


def test_the_command_prints_its_own_lines_only(tmp_path, tiny_tflite):
    photos = _images(tmp_path / "photos", 10, 40)
    export = _check(run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "export", "--alpha", "0.5", "--weights", "none",
        "--input-size", "32", "--calibration-dir", photos, "--output", tmp_path / "m.tflite",
    ), *EXPORT)  # fmt: skip
    assert "int8" in export.stdout  # the converter's quantizer ran: its line had its chance
    _check(run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "evaluate", tiny_tflite["int8.tflite"],
        "--keras-model", tiny_tflite["model.keras"], "--images", photos, "--crop", "64",
    ), *EVALUATE)  # fmt: skip
    _check(run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "benchmark", tiny_tflite["int8.tflite"],
        "--runtime", "interpreter", "compiled", "--runs", "2",
    ), *BENCHMARK)  # fmt: skip


def test_the_command_with_verbose_shows_the_libraries_lines(tmp_path, tiny_tflite):
    result = run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "--verbose", "evaluate",
        tiny_tflite["int8.tflite"], "--keras-model", tiny_tflite["model.keras"], "--images",
        _images(tmp_path / "photos", 2, 40), "--crop", "64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "XNNPACK delegate" in result.stderr  # LiteRT's INFO line is back
    assert foreign_lines(result.stdout, *EVALUATE) == []


def test_the_tflite_programs_print_their_own_lines_only(tmp_path, tiny_tflite):
    photos = _images(tmp_path / "photos", 10, 40)
    _check(run_as_user(
        tmp_path, "-m", "tflite.convert", "--alpha=0.5", "--weights=none", "--input_size=32",
        f"--calibration_dir={photos}", f"--output={tmp_path / 'm.tflite'}",
    ), *EXPORT)  # fmt: skip
    _check(run_as_user(
        tmp_path, "-m", "tflite.evaluate", f"--models={tiny_tflite['int8.tflite']}",
        f"--keras_model={tiny_tflite['model.keras']}", f"--images={photos}", "--crop=64",
    ), *EVALUATE)  # fmt: skip
    _check(run_as_user(
        tmp_path, "-m", "tflite.benchmark", f"--models={tiny_tflite['int8.tflite']}",
        "--runtime=interpreter,compiled", "--runs=2",
    ), *BENCHMARK)  # fmt: skip


def test_an_error_still_reaches_the_user(tmp_path):
    result = run_as_user(tmp_path, "-m", "tflite.benchmark", "--models=missing.tflite")
    assert result.returncode == 2
    assert foreign_lines(result.stderr, r"error: No file exists at that path\..*missing\.tflite.*") == []


@pytest.mark.slow
def test_the_training_programs_print_their_own_lines_only(tmp_path):
    train, val = _class_folders(tmp_path)
    _check(run_as_user(
        tmp_path, "-m", "training.finetune", "--model=v2", "--alpha=0.5", "--weights=none",
        f"--train_data={train}", f"--val_data={val}", "--num_classes=3", "--image_size=32",
        "--eval_resize=32", "--batch_size=8", "--head_epochs=1", "--finetune_epochs=1",
        "--qat_epochs=1", "--calibration_images=16", f"--out_dir={tmp_path / 'finetune'}",
    ), *FINETUNE)  # fmt: skip
    _check(run_as_user(
        tmp_path, "-m", "training.qat", "--data=synthetic", "--model=v2", "--alpha=0.5",
        f"--keras_model={tmp_path / 'finetune' / 'model.keras'}", "--num_classes=3",
        "--image_size=32", "--synthetic_size=32", "--eval_resize=32", "--batch_size=8",
        "--train_examples=16", "--val_examples=8", "--calibration_images=16",
        "--tflite_eval_examples=0", f"--out_dir={tmp_path / 'qat'}",
    ), PROGRESS_BAR, TF_KERAS_PROGRESS, r"Epoch \d+/\d+",
       r"validation top-1: QAT model \d\.\d{4}, int8 \.tflite nan",
       r"wrote \S+\.tflite \(\d+\.\d\d MB, full int8\)")  # fmt: skip
    _check(run_as_user(
        tmp_path, "-m", "training.train_imagenet", "--data=synthetic", "--model=v2",
        "--alpha=0.5", "--weights=none", "--num_classes=3", "--image_size=32",
        "--synthetic_size=32", "--eval_resize=32", "--eval_crop=32", "--batch_size=8",
        "--train_examples=16", "--val_examples=8", "--epochs=1", "--bn_recalibration_steps=1",
        f"--out_dir={tmp_path / 'train'}",
    ), PROGRESS_BAR, r"\d+ replica\(s\), global batch \d+, \d+ steps/epoch, peak lr \S+, run dir \S+",
       r"Epoch \d+/\d+", r"BatchNorm recalibration", r"validation top-1 \d\.\d{4}",
       r"wrote \S+\.keras and \S+\.weights\.h5")  # fmt: skip


@pytest.mark.slow
def test_a_benchmark_program_prints_its_own_lines_only(tmp_path):
    result = run_as_user(
        tmp_path, "-m", "benchmarks.training_throughput", "--batch-size=2", "--image-size=32",
        "--rounds=1", "--steps=1", "--inference-steps=1", f"--out={tmp_path}",
    )  # fmt: skip
    # It exits 1 when a ratio misses its goal (likely at 32 px and batch 2), 0 otherwise.
    goals = json.loads((tmp_path / "training_throughput.json").read_text())["goals"]
    met = all(goal["met"] for goal in goals.values())
    assert result.returncode == (0 if met else 1), result.stderr[-3000:]
    # Its report (stdout) is a free-form table; stderr holds its rounds only.
    assert foreign_lines(result.stderr, r"round \d+/\d+: .*") == []


@pytest.mark.slow
def test_end_to_end_through_the_command_line(tmp_path):
    """Issue 19's run: fine-tune on generated classes, export int8 (calibrated on
    a folder), float32 and ONNX, evaluate the three next to the Keras model,
    benchmark the two .tflite files; every line is the programs' own."""
    train, val = _class_folders(tmp_path, per_class=8)
    run = tmp_path / "run"
    _check(run_as_user(
        tmp_path, "-m", "training.finetune", "--model=v2", "--alpha=0.5", "--weights=none",
        f"--train_data={train}", f"--val_data={val}", "--num_classes=3", "--image_size=32",
        "--eval_resize=32", "--batch_size=8", "--head_epochs=1", "--finetune_epochs=1",
        f"--out_dir={run}",
    ), *FINETUNE)  # fmt: skip
    keras_model = run / "model.keras"
    calibration = tmp_path / "calibration"  # a folder of photos: the training images
    calibration.mkdir()
    for i, image in enumerate(sorted(train.rglob("*.jpg"))):
        (calibration / f"{i}.jpg").write_bytes(image.read_bytes())
    exports = {
        "m_int8.tflite": ["--quantization", "int8", "--calibration-dir", calibration],
        "m_float32.tflite": ["--quantization", "float32"],
        "m.onnx": ["--format", "onnx"],
    }
    for name, flags in exports.items():
        result = _check(run_as_user(
            tmp_path, "-m", "keras_shufflenet.cli", "export", "--keras-model", keras_model,
            *flags, "--output", tmp_path / name,
        ), *EXPORT)  # fmt: skip
        assert result.stdout.startswith(f"wrote {tmp_path / name} ")
    result = _check(run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "evaluate", *(tmp_path / n for n in exports),
        "--keras-model", keras_model, "--images", val, "--resize", "32", "--crop", "32",
    ), *EVALUATE)  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "24 images (24 labelled, labels from class index), resize 32 -> centre crop 32"  # model.labels.txt
    assert "top-5" not in lines[1]  # 3 classes
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert list(rows) == ["keras", *exports]
    assert rows["m_float32.tflite"][3] == rows["m.onnx"][2] == rows["keras"][2]  # same top-1
    result = _check(run_as_user(
        tmp_path, "-m", "keras_shufflenet.cli", "benchmark", tmp_path / "m_int8.tflite",
        tmp_path / "m_float32.tflite", "--runtime", "interpreter", "compiled", "--runs", "3",
        "--json-out", tmp_path / "bench.json",
    ), *BENCHMARK)  # fmt: skip
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["backend"], r["xnnpack_partitions"]) for r in saved] == [
        ("interpreter", 1), ("compiled", 1)] * 2  # fmt: skip
