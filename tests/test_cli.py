import re

import numpy as np
import pytest
from PIL import Image

from keras_shufflenet import cli

from helpers import run_cli



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


def test_predict_with_a_weights_file(tmp_path):
    from keras_shufflenet import ShuffleNetV2

    weights = tmp_path / "random.weights.h5"
    ShuffleNetV2(alpha=0.5, weights=None).save_weights(weights)
    rng = np.random.default_rng(0)
    image = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(image)

    result = run_cli(tmp_path, "predict", image, "--alpha", "0.5", "--weights", weights)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(image)
    assert len(lines) == 6
    for rank, line in enumerate(lines[1:], 1):
        assert re.fullmatch(rf"  {rank}\. \S+ \(n\d{{8}}\)  \d+\.\d\d%", line), line


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

    monkeypatch.setattr(cli, "info", broken)
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
    assert "usage: keras-shufflenet" in capsys.readouterr().err


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
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(out)).get_input_details()[0]
    assert details["shape"].tolist() == [1, 64, 64, 3] and details["dtype"] == np.int8


def test_export_int8_without_calibration_fails_cleanly(tmp_path):
    out = tmp_path / "m.tflite"
    result = run_cli(tmp_path, "export", "--weights", "none", "--output", out)
    assert result.returncode == 2
    assert "--calibration-dir" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
