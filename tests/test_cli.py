import re

import numpy as np
import pytest
from PIL import Image

from keras_shufflenet import cli

from helpers import ROOT, hostile_checkpoint, randomize_batchnorm, run_cli



@pytest.fixture
def bad_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    return path


def test_info_v2(tmp_path):
    result = run_cli(tmp_path, "info", "--model", "v2")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert "params" in header and "MACs" in header
    assert len(rows) == 4
    expected = [
        ("1,366,792", "40.5"),
        ("2,278,604", "144.9"),
        ("3,503,624", "295.8"),
        ("7,393,996", "583.3"),
    ]
    for row, (params, macs) in zip(rows, expected):
        assert params in row and f" {macs} " in row, row
    assert "232/224" in rows[3] and "76.23" in rows[3]


def test_predict_with_a_weights_file(tmp_path, v2_weights):
    import keras_shufflenet as ks
    from keras_shufflenet import _images

    image = tmp_path / "photo.jpg"
    image.write_bytes((ROOT / "samples" / "cat.jpg").read_bytes())
    result = run_cli(tmp_path, "predict", image, "--alpha", "0.5", "--weights", v2_weights)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(image)
    assert len(lines) == 6
    for rank, line in enumerate(lines[1:], 1):
        assert re.fullmatch(rf"  {rank}\. \S+ \(n\d{{8}}\)  \d+\.\d\d%", line), line
    # What the weights give on the photo resized to 256 and centre-cropped to
    # 224 (the evaluation size without published weights).
    model = ks.ShuffleNetV2(alpha=0.5, weights=str(v2_weights))
    x = _images.load_images([image], resize=256, crop=224).astype("float32")
    (top,) = ks.decode_predictions(model.predict(x, verbose=0), top=5)
    expected = [f"  {rank}. {name} ({wnid})  {score * 100:.2f}%"
                for rank, (wnid, name, score) in enumerate(top, 1)]  # fmt: skip
    assert lines[1:] == expected


def test_predict_bad_image_fails_fast(tmp_path, bad_image):
    result = run_cli(tmp_path, "predict", bad_image)
    assert result.returncode == 2
    # TensorFlow may log to stderr while it is imported; the error is the last line.
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("error: ") and str(bad_image) in last_line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_predict_unpublished_imagenet_weights(tmp_path):
    result = run_cli(
        tmp_path,
        "predict",
        "--model",
        "v1",
        "--groups",
        "2",
        "--alpha",
        "0.5",
        "--weights",
        "imagenet",
        "x.jpg",
    )
    assert result.returncode == 2
    assert "error: No ImageNet weights are published" in result.stderr
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback(bad_image, capsys):
    assert cli.main(["--verbose", "predict", str(bad_image)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and f"error: Could not load {str(bad_image)!r}" in err


def test_unexpected_errors_exit_1(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("boom")

    from keras_shufflenet.cli import _info

    monkeypatch.setattr(_info, "run", broken)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert "error: RuntimeError: boom" in err and "Traceback" not in err


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_no_command_prints_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: the following arguments are required: COMMAND (see `keras-shufflenet --help`)\n"
    )


@pytest.mark.slow
def test_export_int8_from_a_calibration_folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    out = tmp_path / "snv2.tflite"
    result = run_cli(
        tmp_path, "export", "--model", "shufflenetv2", "--alpha", "0.5", "--weights", "none",
        "--input-size", "64", "--calibration-dir", photos, "--output", out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {out}" in result.stdout and "int8" in result.stdout
    assert "12/12" in result.stderr  # the calibration progress bar, on stderr
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(out)).get_input_details()[0]
    assert details["shape"].tolist() == [1, 64, 64, 3] and details["dtype"] == np.uint8


def test_export_int8_without_calibration_fails_cleanly(tmp_path):
    out = tmp_path / "m.tflite"
    result = run_cli(tmp_path, "export", "--weights", "none", "--output", out)
    assert result.returncode == 2
    assert "--calibration-dir" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------
# export --format onnx | keras, convert-weights, exit codes
# --------------------------------------------------------------------------

COMMANDS = ("predict", "info", "export", "convert-weights", "benchmark", "evaluate")


@pytest.fixture(scope="module")
def v2_weights(tmp_path_factory):
    """A `.weights.h5` of ShuffleNetV2 0.5x with random weights and BatchNorm
    statistics, whose outputs change with the image."""
    from keras_shufflenet import ShuffleNetV2

    model = ShuffleNetV2(alpha=0.5, weights=None)
    randomize_batchnorm(model, weights=True, data=_pixels(8, seed=99))
    path = tmp_path_factory.mktemp("weights") / "v2_random.weights.h5"
    model.save_weights(path)
    return path


def _keras_v2(weights):
    from keras_shufflenet import ShuffleNetV2

    return ShuffleNetV2(alpha=0.5, weights=str(weights))


def _pixels(n, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _assert_one_error_line(err, *fragments):
    """stderr ends with exactly one `error:` line, without a traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and sum(l.startswith("error:") for l in lines) == 1
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_export_onnx_matches_keras_at_any_batch(tmp_path, v2_weights):
    import onnxruntime

    out = tmp_path / "snv2.onnx"
    result = run_cli(
        tmp_path, "export", "--format", "onnx", "--alpha", "0.5", "--weights", v2_weights,
        "--input-size", "64", "--output", out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"wrote {out} (") and "onnx opset 17" in result.stdout
    assert "4/4" in result.stderr  # the conversion's progress bar, on stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == ["snv2.onnx"]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert shape == ["batch", 64, 64, 3]
    model = _keras_v2(v2_weights)
    for x in (_pixels(1, seed=1), _pixels(3, seed=2)):
        (probs,) = session.run(None, {"input": x})
        np.testing.assert_allclose(probs, model.predict(x, verbose=0), rtol=1e-3, atol=1e-7)


def test_export_keras_round_trip(tmp_path, v2_weights):
    import keras

    out = tmp_path / "snv2.keras"
    result = run_cli(
        tmp_path, "export", "--format", "keras", "--alpha", "0.5", "--weights", v2_weights,
        "--output", out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == f"wrote {out} ({out.stat().st_size / 2**20:.2f} MB, keras)\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    loaded = keras.saving.load_model(out)  # no custom_objects needed
    x = _pixels(2, seed=3)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), _keras_v2(v2_weights).predict(x, verbose=0), rtol=0, atol=1e-7
    )


@pytest.mark.parametrize(
    "version, include_top",
    [("v2", True), ("v1", False)],
)
def test_convert_weights_matches_the_reference(tmp_path, version, include_top):
    import reference
    import torch

    import keras_shufflenet as ks

    if version == "v2":
        torch_model = reference.torchvision_v2(0.5, seed=5)
        model_args = ["--model", "v2", "--alpha", "0.5"]
        build = lambda **kw: ks.ShuffleNetV2(alpha=0.5, **kw)  # noqa: E731
        torch_part = torch_model
    else:
        torch_model = reference.pytorchcv_v1("shufflenet_g3_wd2", seed=5)
        model_args = ["--model", "v1", "--groups", "3", "--alpha", "0.5"]
        build = lambda **kw: ks.ShuffleNetV1(groups=3, alpha=0.5, **kw)  # noqa: E731
        torch_part = reference.v1_features(torch_model)
    checkpoint = tmp_path / "reference.pth"
    torch.save(torch_model.state_dict(), checkpoint)
    out = tmp_path / "converted.weights.h5"
    top_flag = "--include-top" if include_top else "--no-top"
    result = run_cli(tmp_path, "convert-weights", checkpoint, *model_args, top_flag, "--output", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"wrote {out} (")
    assert ("with the classifier" if include_top else "without the classifier") in result.stdout
    assert "2/2" in result.stderr  # the conversion's progress bar, on stderr

    if include_top:
        model = build(weights=str(out), classifier_activation=None)
    else:
        model = build(weights=str(out), include_top=False)
    x = _pixels(2, seed=4)
    expected = reference.run_torch(torch_part, x)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=0, atol=1e-4)


def test_convert_weights_refuses_a_hostile_checkpoint(tmp_path):
    checkpoint, marker = tmp_path / "hostile.pth", tmp_path / "pwned"
    checkpoint.write_bytes(hostile_checkpoint(marker))
    out = tmp_path / "out.weights.h5"
    result = run_cli(tmp_path, "convert-weights", checkpoint, "--alpha", "0.5", "--output", out)
    assert result.returncode == 2
    _assert_one_error_line(result.stderr, str(checkpoint), "refused global")
    assert result.stdout == ""
    assert not marker.exists() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.pth", "keras_home"]


@pytest.fixture(scope="module")
def v2_checkpoint(tmp_path_factory):
    import reference
    import torch

    path = tmp_path_factory.mktemp("pth") / "v2_0.5x.pth"
    torch.save(reference.torchvision_v2(0.5, seed=6).state_dict(), path)
    return path


def _run_in_process(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--model", "v1", "--alpha", "0.5"], ["does not match", "ShuffleNetV1 groups=3, alpha=0.5"]),
        (["--alpha", "1.0"], ["does not match", "expects shapes"]),
        (["--alpha", "0.5", "--classes", "10"], ["does not match", "predictions"]),
        (["--alpha", "0.7"], ["Received: alpha=0.7"]),
    ],
)
def test_convert_weights_mismatch_exits_2_and_writes_nothing(
    args, fragments, tmp_path, v2_checkpoint, capsys
):
    out = tmp_path / "out.weights.h5"
    code, stdout, err = _run_in_process(
        ["convert-weights", v2_checkpoint, *args, "--output", out], capsys
    )
    assert code == 2 and stdout == ""
    _assert_one_error_line(err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_convert_weights_truncated_checkpoint(tmp_path, v2_checkpoint, capsys):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(v2_checkpoint.read_bytes()[:5000])
    out = tmp_path / "out.weights.h5"
    code, _, err = _run_in_process(
        ["convert-weights", broken, "--alpha", "0.5", "--output", out], capsys
    )
    assert code == 2
    _assert_one_error_line(err, str(broken))
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--format", "onnx", "--output", "{tmp}/m.tflite"],
         "error: --output must name a .onnx file. Received: --output={tmp}/m.tflite"),
        (["export", "--output", "{tmp}/m.onnx", "--quantization", "float32"],
         "error: --output must name a .tflite file. Received: --output={tmp}/m.onnx"),
        (["export", "--format", "keras", "--quantization", "float16", "--output", "{tmp}/m.keras"],
         "error: --quantization only applies to --format tflite. Received: --format=keras"),
        (["export", "--format", "onnx", "--calibration-dir", "{tmp}", "--io-dtype", "uint8",
          "--output", "{tmp}/m.onnx"],
         "error: --calibration-dir, --io-dtype only apply to --format tflite. Received: --format=onnx"),
        (["export", "--format", "keras", "--class-index", "{tmp}/names.txt", "--output", "{tmp}/m.keras"],
         "error: --class-index only applies to --format tflite. Received: --format=keras"),
        (["export", "--quantization", "float32", "--class-index", "{tmp}/names.txt",
          "--output", "{tmp}/m.tflite"],
         "error: No class-index file exists at that path. Received: {tmp}/names.txt"),
        (["export", "--quantization", "float32", "--opset", "17", "--output", "{tmp}/m.tflite"],
         "error: --opset only applies to --format onnx. Received: --format=tflite"),
        (["export", "--format", "onnx", "--opset", "12", "--output", "{tmp}/m.onnx"],
         "error: `opset` must be an int from 14 to 18 (the opsets tf2onnx supports). Received: opset=12"),
        (["export", "--format", "keras", "--input-size", "96", "--output", "{tmp}/m.keras"],
         "error: --input-size only applies to --format tflite or onnx. Received: --format=keras"),
        (["export", "--format", "keras", "--output", "{tmp}/missing/m.keras"],
         "error: The folder of the output file does not exist. Received: --output={tmp}/missing/m.keras"),
        (["convert-weights", "{tmp}/absent.pth", "--output", "{tmp}/w.weights.h5"],
         "error: No file exists at that path. Expected an existing torch checkpoint (.pth, .pt). "
         "Received: CHECKPOINT={tmp}/absent.pth"),
    ],
)
def test_bad_arguments_exit_2_before_any_work(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, stdout, err = _run_in_process(argv, capsys)
    assert code == 2 and stdout == ""
    assert err.splitlines() == [message.format(tmp=tmp_path)]
    assert list(tmp_path.iterdir()) == []


def test_convert_weights_output_must_be_weights_h5(tmp_path, v2_checkpoint, capsys):
    code, _, err = _run_in_process(
        ["convert-weights", v2_checkpoint, "--output", tmp_path / "w.h5"], capsys
    )
    assert code == 2
    assert err.strip() == f"error: --output must name a .weights.h5 file. Received: --output={tmp_path / 'w.h5'}"


def test_help_lists_every_command_with_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    examples = out[out.index("examples:"):]
    for command in COMMANDS:
        assert f"    {command}" in out[: out.index("examples:")], command  # listed
        assert f"keras-shufflenet {command} " in examples, command  # an example each
    for example in ("export --format onnx", "export --format keras", "convert-weights "):
        assert example in examples
    assert "--alpha 1.0 \\\n      --output shufflenet_v2_1x.weights.h5\n" in examples  # continued lines
    assert "exit codes:" in out
    for code in ("0  success", "2  bad input", "1  unexpected failure"):
        assert code in out
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
    export_help = capsys.readouterr().out
    assert "--format {tflite,onnx,keras}" in export_help and "--opset" in export_help
    assert "--no-top" in export_help and "--include-top" in export_help


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "--input-size", "abc", "--output", "m.tflite"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --input-size: invalid int")


def test_missing_onnx_packages_exit_1_before_the_build(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` fails
    code, stdout, err = _run_in_process(
        ["export", "--format", "onnx", "--weights", "none", "--output", tmp_path / "m.onnx"], capsys
    )
    assert code == 1 and stdout == ""
    _assert_one_error_line(err, "error: ImportError:", 'pip install "keras-shufflenet[onnx]"')
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Bad input, every subcommand: exit 2, one `error:` line naming what was
# expected and what was received, no output file.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, v2_weights):
    """Files a user may pass by mistake, in a folder of their own."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    (folder / "half.weights.h5").write_bytes(v2_weights.read_bytes())  # a 0.5x file
    import keras_shufflenet as ks

    saved = folder / "saved.keras"
    ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(64, 64, 3), classes=3).save(saved)
    (folder / "truncated.keras").write_bytes(saved.read_bytes()[:4000])
    (folder / "truncated.weights.h5").write_bytes(v2_weights.read_bytes()[:4000])
    (folder / "notes.txt").write_text("not a model")
    (folder / "not_images").mkdir()
    (folder / "not_images" / "README.txt").write_text("no photos here")
    (folder / "image.jpg").write_bytes((ROOT / "samples" / "cat.jpg").read_bytes())
    return folder


BAD_INPUTS = [
    # predict
    (["predict", "{b}/image.jpg", "--alpha", "1.0", "--weights", "{b}/half.weights.h5"],
     ["does not fit shufflenet_v2_1x", "layer 'stage2_unit1_branch2_conv1' expects",
      "shape (1, 1, 24, 58)", "holds (1, 1, 24, 24)"]),
    (["predict", "{b}/image.jpg", "--alpha", "0.5", "--weights", "{b}/truncated.keras"],
     ["truncated.keras", "not a complete Keras weights file"]),
    (["predict", "{b}/image.jpg", "--alpha", "0.5", "--weights", "{b}/truncated.weights.h5"],
     ["truncated.weights.h5", "not a complete Keras weights file"]),
    (["predict", "{b}/image.jpg", "--model", "v3"], ["`model` must be one of", "model='v3'"]),
    (["predict", "{b}/image.jpg", "--alpha", "0.7"], ["`alpha` must be one of", "alpha=0.7"]),
    (["predict", "{b}/image.jpg", "--weights", "{b}/notes.txt"], ["weights file ending in", "notes.txt"]),
    (["predict", "{b}/notes.txt", "--weights", "none"], ["Could not load", "Expected an image"]),
    (["predict", "{b}/image.jpg", "--top", "0"], ["--top must be in [1, 1000]", "--top=0"]),
    # info
    (["info", "--model", "v3"], ["invalid choice: 'v3'"]),
    # export
    (["export", "--weights", "none", "--input-size", "10", "--output", "{t}/m.tflite"],
     ["at least 32", "input_size=10"]),
    (["export", "--weights", "none", "--calibration-dir", "{b}/not_images", "--output", "{t}/m.tflite"],
     ["without image files", "not_images"]),
    (["export", "--weights", "none", "--quantization", "int4", "--output", "{t}/m.tflite"],
     ["`quantization` must be one of", "quantization='int4'"]),
    (["export", "--format", "pdf", "--output", "{t}/m.pdf"], ["--format must be one of", "--format=pdf"]),
    (["export", "--keras-model", "{b}/truncated.keras", "--format", "keras", "--output", "{t}/m.keras"],
     ["not a complete .keras file", "truncated.keras"]),
    (["export", "--keras-model", "{b}/notes.txt", "--output", "{t}/m.keras", "--format", "keras"],
     ["Expected an existing saved .keras model", "notes.txt"]),
    # convert-weights
    (["convert-weights", "{b}/notes.txt", "--output", "{t}/w.weights.h5"],
     ["Expected an existing torch checkpoint", "CHECKPOINT="]),
    (["convert-weights", "{b}/half.weights.h5", "--output", "{t}/w.weights.h5"],
     ["Expected an existing torch checkpoint", "half.weights.h5"]),
    # benchmark
    (["benchmark", "{t}/absent.tflite"], ["No file exists", "absent.tflite"]),
    (["benchmark", "{b}/notes.txt"], ["Expected an existing .tflite model", "notes.txt"]),
    (["benchmark", "{b}/image.jpg", "--runs", "0"], ["Expected an existing .tflite model", "image.jpg"]),
    (["benchmark", "{b}/notes.txt", "--gpu"], ["--gpu only apply with --adb"]),
    # evaluate: the model argument is checked before any weights are fetched
    (["evaluate", "{b}/notes.txt", "--images", "{b}"],
     ["Expected an existing exported model (.tflite, .onnx)", "notes.txt"]),
    (["evaluate", "{b}/saved.keras", "--images", "{b}"],
     ["Expected an existing exported model (.tflite, .onnx)", "saved.keras"]),
]


@pytest.mark.parametrize("argv, fragments", BAD_INPUTS, ids=lambda v: " ".join(v[:3]) if isinstance(v, list) and v and v[0] in COMMANDS else None)
def test_every_subcommand_refuses_bad_input(argv, fragments, bad_inputs, tmp_path, capsys):
    before = sorted(p.name for p in bad_inputs.iterdir())
    argv = [a.format(b=bad_inputs, t=tmp_path) for a in argv]
    with pytest.raises(SystemExit) if argv[0] == "info" else _no_exit() as exit_info:
        code = cli.main(argv)
    code = exit_info.value.code if argv[0] == "info" else code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    _assert_one_error_line(captured.err, *[f.format(b=bad_inputs, t=tmp_path) for f in fragments])
    line = captured.err.strip().splitlines()[-1]
    assert "Received" in line or "received" in line or "invalid choice" in line, line
    assert list(tmp_path.iterdir()) == [] and sorted(p.name for p in bad_inputs.iterdir()) == before
    assert not (tmp_path / "keras_home").exists()  # nothing was fetched


class _no_exit:
    """A stand-in for `pytest.raises` where the command returns its exit code."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_tensorflow_native_logs_stay_out_unless_verbose(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    command = [sys.executable, "-m", "keras_shufflenet.cli"]
    args = ["predict", str(ROOT / "samples" / "cat.jpg"), "--weights", "none", "--alpha", "0.5"]

    def run(*extra):
        return subprocess.run([*command, *extra, *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300, check=False)  # fmt: skip

    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith(str(ROOT / "samples" / "cat.jpg"))
    native = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|oneDNN|absl::InitializeLog", re.MULTILINE)
    verbose = run("--verbose")
    assert verbose.returncode == 0 and verbose.stdout.splitlines()[0] == quiet.stdout.splitlines()[0]
    assert native.search(verbose.stderr), "TensorFlow printed nothing: this test proves nothing"
