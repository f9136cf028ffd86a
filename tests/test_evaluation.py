"""TFLite-versus-Keras evaluation on folders of images."""


import numpy as np
import pytest
from PIL import Image

from keras_shufflenet.runtime import _evaluation as evaluation

from helpers import run_python

RESIZE, CROP = 73, 64


@pytest.fixture(scope="module")
def keras_model(tiny_tflite):
    import keras

    return keras.saving.load_model(tiny_tflite["model.keras"])


def _save_images(folder, count, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        # Smooth colour gradients plus noise: images with some structure.
        y, x = np.mgrid[0:90, 0:120]
        base = rng.uniform(0, 255, 3) * (x[..., None] / 120) + rng.uniform(
            0, 255, 3
        ) * (y[..., None] / 90)
        pixels = np.clip(base / 2 + rng.normal(0, 20, base.shape), 0, 255).astype(
            np.uint8
        )
        Image.fromarray(pixels).save(folder / f"img{i}.png")


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "images"
    _save_images(root / "dogs", 3, seed=1)
    _save_images(root / "cats", 3, seed=2)
    (root / "cats" / "README.txt").write_text("not an image, skipped by its suffix")
    return root


def test_float_tflite_agrees_with_keras(tiny_tflite, keras_model, class_folders):
    _save_images(class_folders, 1, seed=3)  # a loose image: evaluated, no label
    result = evaluation.evaluate_tflite(
        tiny_tflite["float.tflite"],
        keras_model,
        class_folders,
        resize=RESIZE,
        crop=CROP,
    )
    assert result.images == 7 and result.labeled == 6
    assert result.label_source == "folders"
    assert result.input_type == "float32"
    assert result.top1_agreement == 1.0
    assert result.mean_abs_error < 1e-4 and result.max_abs_error < 1e-3
    assert 0.0 <= result.keras_top1 <= 1.0
    assert result.tflite_top1 == result.keras_top1
    assert "top-1 agreement:    100.00%" in result.summary()


def test_int8_tflite_numbers_are_sane(tiny_tflite, keras_model, class_folders):
    result = evaluation.evaluate_tflite(
        tiny_tflite["int8.tflite"], keras_model, class_folders, resize=RESIZE, crop=CROP
    )
    assert result.images == 6 and result.labeled == 6
    assert result.input_type == "int8"
    assert 0.0 <= result.top1_agreement <= 1.0
    # Softmax outputs, dequantized: differences in [0, 1]. (A random network is
    # not robust to int8: about 0.2 here, where trained models are near 0.01.)
    assert 0.0 < result.mean_abs_error <= result.max_abs_error <= 1.0
    assert 0.0 <= result.tflite_top1 <= 1.0


def test_flat_folder_and_limit(tiny_tflite, keras_model, tmp_path):
    _save_images(tmp_path / "flat", 4, seed=4)
    result = evaluation.evaluate_tflite(
        tiny_tflite["float.tflite"], keras_model, tmp_path / "flat",
        resize=RESIZE, crop=CROP, limit=3,
    )  # fmt: skip
    assert result.images == 3 and result.labeled == 0
    assert result.label_source is None
    assert result.keras_top1 is None and result.tflite_top1 is None
    assert "top-1 Keras" not in result.summary()


def test_class_labels():
    imagenet_names = ["n01443537", "n01440764"]  # goldfish, tench
    assert evaluation.class_labels(imagenet_names, 1000) == (
        {"n01440764": 0, "n01443537": 1},
        "imagenet",
    )
    # Not WordNet ids, or not an ImageNet model: sorted order when the counts match.
    assert evaluation.class_labels(["dogs", "cats"], 2) == (
        {"cats": 0, "dogs": 1},
        "folders",
    )
    assert evaluation.class_labels(imagenet_names, 2) == (
        {"n01440764": 0, "n01443537": 1},
        "folders",
    )
    assert evaluation.class_labels(["a", "b", "c"], 2) == ({}, None)
    assert evaluation.class_labels(["n99999999", "n01440764"], 1000) == ({}, None)
    assert evaluation.class_labels([], 2) == ({}, None)


def test_class_folders_that_do_not_match_the_model_give_no_labels(tmp_path):
    for name in ("a", "b", "c"):
        _save_images(tmp_path / name, 1, seed=5)
    paths, labels, source = evaluation.find_images(tmp_path, num_classes=2)
    assert [p.parent.name for p in paths] == ["a", "b", "c"]
    assert labels == [None, None, None] and source is None


def test_errors(tiny_tflite, keras_model, class_folders, tmp_path):
    empty = tmp_path / "empty"
    (empty / "cats").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No images .* found in .*empty"):
        evaluation.evaluate_tflite(
            tiny_tflite["float.tflite"], keras_model, empty, crop=CROP
        )
    with pytest.raises(ValueError, match="image folder does not exist"):
        evaluation.evaluate_tflite(
            tiny_tflite["float.tflite"], keras_model, tmp_path / "nowhere", crop=CROP
        )
    with pytest.raises(ValueError, match="takes 64x64 images but `crop` is 224"):
        evaluation.evaluate_tflite(
            tiny_tflite["float.tflite"], keras_model, class_folders
        )
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        evaluation.evaluate_tflite(
            tmp_path / "missing.tflite", keras_model, class_folders
        )
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(
        ValueError, match="junk.tflite' could not be loaded as a TFLite"
    ):
        evaluation.evaluate_tflite(junk, keras_model, class_folders, crop=CROP)
    (class_folders / "dogs" / "broken.jpg").write_text("not a picture")
    with pytest.raises(ValueError, match="broken.jpg"):
        evaluation.evaluate_tflite(
            tiny_tflite["float.tflite"],
            keras_model,
            class_folders,
            resize=RESIZE,
            crop=CROP,
        )
    with pytest.raises(ValueError, match="limit=0"):
        evaluation.evaluate_tflite(
            tiny_tflite["float.tflite"], keras_model, class_folders, crop=CROP, limit=0
        )




def test_cli_evaluate(tiny_tflite, class_folders, tmp_path):
    result = run_python(
        tmp_path, "-m", "keras_shufflenet.cli", "evaluate", tiny_tflite["int8.tflite"],
        "--images", class_folders, "--keras-model", tiny_tflite["model.keras"],
        "--crop", "64", "--limit", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "(int8 input)" in out
        and "images:             4 (4 labeled, labels from folders)" in out
    )
    assert "top-1 agreement:" in out and "top-1 TFLite:" in out


def test_cli_evaluate_errors(tiny_tflite, class_folders, tmp_path, capsys):
    from keras_shufflenet import cli

    (tmp_path / "empty").mkdir()
    float_model, keras_file = tiny_tflite["float.tflite"], tiny_tflite["model.keras"]
    cases = [
        (
            [
                "--images",
                tmp_path / "empty",
                "--keras-model",
                keras_file,
                "--crop",
                "64",
            ],
            "No images",
        ),
        (["--images", class_folders, "--keras-model", keras_file, "--crop", "96"], "`crop` is 96"),
        (
            [
                "--images",
                class_folders,
                "--keras-model",
                keras_file,
                "--weights",
                keras_file,
            ],
            "either a saved model or weights",
        ),
        (
            ["--images", class_folders, "--keras-model", tmp_path / "x.h5"],
            "Expected an existing saved .keras model",
        ),
    ]
    for args, expected in cases:
        assert cli.main(["evaluate", str(float_model), *map(str, args)]) == 2, args
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and expected in error, (args, error)
        assert "\n" not in error


def test_absl_evaluate_program(tiny_tflite, class_folders, tmp_path):
    result = run_python(
        tmp_path, "-m", "tflite.evaluate", f"--tflite={tiny_tflite['float.tflite']}",
        f"--keras_model={tiny_tflite['model.keras']}", f"--images={class_folders}",
        "--crop=64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "top-1 agreement:    100.00%" in result.stdout
    assert "images:             6 (6 labeled" in result.stdout


def test_tflite_top1_scores_batches_against_their_labels(tiny_tflite, keras_model):
    x = np.random.default_rng(5).uniform(0, 255, (6, CROP, CROP, 3)).astype("float32")
    top = np.asarray(keras_model(x, training=False)).argmax(-1)
    wrong = (top + 1) % int(keras_model.output_shape[-1])
    labels = np.where(np.arange(6) < 4, top, wrong)  # 4 of 6 right
    one_hot = np.eye(int(keras_model.output_shape[-1]))[labels]
    path = tiny_tflite["float.tflite"]
    assert evaluation.tflite_top1(path, [(x[:3], labels[:3]), (x[3:], labels[3:])]) == 4 / 6
    assert evaluation.tflite_top1(path, [(x, one_hot)], limit=2) == 1.0
    with pytest.raises(ValueError, match="No images"):
        evaluation.tflite_top1(path, [])
