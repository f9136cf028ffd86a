"""TFLite-versus-Keras evaluation on folders of images."""

import types

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


def _expected(tflite_path, keras_model, folder, limit=None):
    """What evaluating `folder`'s class sub-folders must report, computed here:
    the images loaded as the evaluation loads them, the `.tflite` run image by
    image with LiteRT, its integer input quantized and output dequantized with
    the file's own scale and zero point. Labels: sorted folder names."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from keras_shufflenet._images import load_images

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted((folder / name).glob("*.png"))
        paths += files
        labels += [label] * len(files)
    paths, labels = paths[:limit], labels[:limit]
    x = load_images(paths, RESIZE, CROP).astype("float32")
    keras_out = keras.ops.convert_to_numpy(keras_model(x, training=False))

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    tflite_out = []
    for image in x:
        value = image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / scale) + zero, info.min, info.max)
        interpreter.set_tensor(inp["index"], value.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        tflite_out.append(y)
    tflite_out = np.stack(tflite_out)
    labels = np.array(labels)
    error = np.abs(tflite_out - keras_out)
    return {
        "inp": inp,
        "out": out,
        "keras_out": keras_out,
        "top1_agreement": np.mean(keras_out.argmax(-1) == tflite_out.argmax(-1)),
        "mean_abs_error": error.mean(),
        "max_abs_error": error.max(),
        "keras_top1": np.mean(keras_out.argmax(-1) == labels),
        "tflite_top1": np.mean(tflite_out.argmax(-1) == labels),
    }


def _evaluate(tflite_path, keras_model, image_dir, **kwargs):
    """`compare_models` of a Keras model and one `.tflite` file, as the
    figures these tests check."""
    comparison = evaluation.compare_models(keras_model, [tflite_path], image_dir, **kwargs)
    keras_score, score = comparison.scores
    return types.SimpleNamespace(
        images=comparison.images, labeled=comparison.labeled,
        label_source=comparison.label_source, input_type=score.kind.removeprefix("tflite "),
        top1_agreement=score.agreement, mean_abs_error=score.mean_abs_error,
        max_abs_error=score.max_abs_error, keras_top1=keras_score.top1, tflite_top1=score.top1,
        row=comparison.table().splitlines()[-1].split(),  # name, kind (2 words), figures
    )  # fmt: skip


def _assert_reports(result, expected):
    for key in ("top1_agreement", "keras_top1", "tflite_top1"):
        assert getattr(result, key) == pytest.approx(expected[key], abs=1e-12), key
    for key in ("mean_abs_error", "max_abs_error"):
        assert getattr(result, key) == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key


def test_float_tflite_agrees_with_keras(tiny_tflite, keras_model, class_folders):
    expected = _expected(tiny_tflite["float.tflite"], keras_model, class_folders)
    # The tiny model answers differently for different images (or top-1
    # figures would not depend on the labels).
    assert len(set(expected["keras_out"].argmax(-1))) == 2
    _save_images(class_folders, 1, seed=3)  # a loose image: evaluated, no label
    result = _evaluate(
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
    assert result.mean_abs_error < 1e-5 and result.max_abs_error < 1e-4
    assert result.keras_top1 == pytest.approx(expected["keras_top1"], abs=1e-12)
    assert result.tflite_top1 == result.keras_top1
    assert result.row[4] == "100.00%"  # the table's top-1 agreement


@pytest.mark.parametrize("io_dtype", ["int8", "uint8"])
def test_int8_tflite_figures_are_those_of_the_quantized_model(
    tiny_tflite, keras_model, class_folders, io_dtype
):
    path = tiny_tflite[f"{io_dtype}.tflite"]
    expected = _expected(path, keras_model, class_folders)
    # The file is what was asked for: integer input and output in `io_dtype`,
    # the input's [0, 255] pixels spread over its 256 steps.
    assert np.dtype(expected["inp"]["dtype"]) == np.dtype(io_dtype)
    assert np.dtype(expected["out"]["dtype"]) == np.dtype(io_dtype)
    in_scale, in_zero = expected["inp"]["quantization"]
    assert in_scale == pytest.approx(1.0, rel=0.02)
    assert in_zero == (-128 if io_dtype == "int8" else 0)

    result = _evaluate(path, keras_model, class_folders, resize=RESIZE, crop=CROP)
    assert result.images == 6 and result.labeled == 6 and result.label_source == "folders"
    assert result.input_type == io_dtype
    _assert_reports(result, expected)
    # (A random network is not robust to int8: its softmax outputs move by
    # about 0.1 here, and some answers change, so the figures are checked
    # against the interpreter's own, not against the float model.)
    assert result.mean_abs_error > 0


def test_a_model_without_preprocessing_gets_normalised_images(keras_model, tmp_path):
    """A model built with `include_preprocessing=False` (and its export) is
    fed `preprocess_input(..., include_preprocessing=False)` of the pixels:
    labelled by the answers of the same network with preprocessing inside,
    it scores 100%."""
    import keras_shufflenet as ks
    from keras_shufflenet._images import load_images
    from keras_shufflenet.export import export_tflite

    bare = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(CROP, CROP, 3), classes=2,
                           include_preprocessing=False)  # fmt: skip
    bare.set_weights(keras_model.get_weights())
    path = export_tflite(bare, tmp_path / "bare.tflite", "float32")
    _save_images(tmp_path / "a", 4, seed=1)
    _save_images(tmp_path / "b", 4, seed=2)
    paths = sorted((tmp_path / "a").iterdir()) + sorted((tmp_path / "b").iterdir())
    answers = keras_model.predict(load_images(paths, RESIZE, CROP).astype("float32"), verbose=0)
    answers = answers.argmax(-1)
    assert set(answers) == {0, 1}
    for image, answer in zip(paths, answers):
        (tmp_path / "labelled" / f"class_{answer}").mkdir(parents=True, exist_ok=True)
        image.rename(tmp_path / "labelled" / f"class_{answer}" / f"{image.parent.name}{image.name}")
    result = _evaluate(path, bare, tmp_path / "labelled", resize=RESIZE, crop=CROP)
    assert result.labeled == 8 and result.keras_top1 == result.tflite_top1 == 1.0
    assert result.top1_agreement == 1.0 and result.max_abs_error < 1e-4


def test_flat_folder_and_limit(tiny_tflite, keras_model, tmp_path):
    _save_images(tmp_path / "flat", 4, seed=4)
    result = _evaluate(
        tiny_tflite["float.tflite"], keras_model, tmp_path / "flat",
        resize=RESIZE, crop=CROP, limit=3,
    )  # fmt: skip
    assert result.images == 3 and result.labeled == 0
    assert result.label_source is None
    assert result.keras_top1 is None and result.tflite_top1 is None
    assert result.row[3] == "-"  # no top-1 in the table (and no top-5 column: 2 classes)
    assert len(result.row) == 7


@pytest.mark.parametrize("classes", [5, 6])
def test_top5_is_reported_only_for_more_than_5_classes(classes, tmp_path):
    import keras_shufflenet as ks
    from keras_shufflenet._images import load_images

    for i in range(classes):
        _save_images(tmp_path / f"class_{i}", 1, seed=i)
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(32, 32, 3), classes=classes)
    comparison = evaluation.compare_models(model, [], tmp_path, resize=32, crop=32)
    (score,) = comparison.scores
    header = comparison.table().splitlines()[1]
    if classes == 5:  # top-5 of 5 classes is always 100%
        assert score.top5 is None and "top-5" not in header
    else:
        ranks = np.argsort(-model.predict(
            load_images(sorted(tmp_path.rglob("*.png")), 32, 32).astype("float32"), verbose=0
        ), axis=-1)[:, :5]  # fmt: skip
        assert score.top5 == np.mean((ranks == np.arange(classes)[:, None]).any(axis=1))
        assert "top-5" in header


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
    with pytest.raises(ValueError, match="Received unknown classes: n99999999"):
        evaluation.class_labels(["n99999999", "n01440764"], 1000)
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
        _evaluate(
            tiny_tflite["float.tflite"], keras_model, empty, crop=CROP
        )
    with pytest.raises(ValueError, match="image folder does not exist"):
        _evaluate(
            tiny_tflite["float.tflite"], keras_model, tmp_path / "nowhere", crop=CROP
        )
    with pytest.raises(ValueError, match="takes 64x64 images but `crop` is 224"):
        _evaluate(
            tiny_tflite["float.tflite"], keras_model, class_folders
        )
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        _evaluate(
            tmp_path / "missing.tflite", keras_model, class_folders
        )
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(
        ValueError, match="junk.tflite' could not be loaded as a TFLite"
    ):
        _evaluate(junk, keras_model, class_folders, crop=CROP)
    (class_folders / "dogs" / "broken.jpg").write_text("not a picture")
    with pytest.raises(ValueError, match="broken.jpg"):
        _evaluate(
            tiny_tflite["float.tflite"],
            keras_model,
            class_folders,
            resize=RESIZE,
            crop=CROP,
        )
    with pytest.raises(ValueError, match="limit=0"):
        _evaluate(
            tiny_tflite["float.tflite"], keras_model, class_folders, crop=CROP, limit=0
        )




def _table_rows(out):
    """`{model: cells after the name}` of the `evaluate` command's table."""
    lines = out.strip().splitlines()
    assert lines[1].split()[:2] == ["model", "kind"], out
    return {line.split()[0]: line.split()[1:] for line in lines[3:]}


def test_cli_evaluate(tiny_tflite, keras_model, class_folders, tmp_path):
    result = run_python(
        tmp_path, "-m", "keras_shufflenet.cli", "evaluate", tiny_tflite["int8.tflite"],
        "--images", class_folders, "--keras-model", tiny_tflite["model.keras"],
        "--crop", "64", "--limit", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(
        "4 images (4 labelled, labels from folders), resize 73 -> centre crop 64\n"
    )
    rows = _table_rows(out)
    assert list(rows) == ["keras", "tiny_int8.tflite"]
    # The first 4 images in sorted order, checked against the interpreter's figures.
    expected = _expected(tiny_tflite["int8.tflite"], keras_model, class_folders, limit=4)
    assert "top-5" not in out.splitlines()[1]  # two classes: top-5 would always be 100%
    *kind, top1, agreement, mean_diff, max_diff = rows["tiny_int8.tflite"]
    assert kind == ["tflite", "int8"]
    assert top1 == f"{expected['tflite_top1'] * 100:.2f}%"
    assert agreement == f"{expected['top1_agreement'] * 100:.2f}%"
    assert float(mean_diff) == pytest.approx(expected["mean_abs_error"], rel=5e-3)
    assert float(max_diff) == pytest.approx(expected["max_abs_error"], rel=5e-3)
    assert rows["keras"][1] == f"{expected['keras_top1'] * 100:.2f}%"


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


def test_absl_evaluate_program(tiny_tflite, keras_model, class_folders, tmp_path):
    result = run_python(
        tmp_path, "-m", "tflite.evaluate", f"--models={tiny_tflite['float.tflite']}",
        f"--keras_model={tiny_tflite['model.keras']}", f"--images={class_folders}",
        "--crop=64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("6 images (6 labelled, labels from folders)")
    rows = _table_rows(result.stdout)
    expected = _expected(tiny_tflite["float.tflite"], keras_model, class_folders)
    top1 = f"{expected['keras_top1'] * 100:.2f}%"
    assert rows["keras"][1:3] == [top1, "100.00%"]  # no top-5 column for 3 classes
    assert rows["tiny_float.tflite"][:4] == ["tflite", "float32", top1, "100.00%"]


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
