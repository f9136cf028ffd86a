"""The TFLite model metadata of every export (what MediaPipe Tasks reads; see
tests/test_mediapipe.py for MediaPipe itself), the class names a fine-tuned
model keeps beside it, and `keras-shufflenet info MODEL.tflite`."""

import numpy as np
import pytest

from helpers import run_cli
from keras_shufflenet import _imagenet, cli, models
from keras_shufflenet.export import export_tflite
from keras_shufflenet.export._tflite_file import describe_tflite

SIZE = 64
NAMES = ("circle", "square", "triangle")


def _model(classes=1000, **kwargs):
    return models.build_model(models.v2_spec(0.5), weights=None, input_shape=(SIZE, SIZE, 3),
                              classes=classes, **kwargs)  # fmt: skip


def test_an_imagenet_export_names_imagenet_classes_in_order(tmp_path):
    path = export_tflite(_model(), tmp_path / "m.tflite", "float32")
    metadata = describe_tflite(path).metadata
    assert metadata.labels == tuple(name for _, name in _imagenet.class_index())
    assert metadata.labels[:2] == ("tench", "goldfish") and len(set(metadata.labels)) > 990
    # The graph normalises inside: an app feeds pixels in [0, 255] as they are.
    assert metadata.mean == (0.0,) and metadata.std == (1.0,)
    assert metadata.value_range == (0.0, 255.0)
    assert metadata.name == "shufflenet_v2_0.5x" and metadata.output_name == "probability"
    assert "ShuffleNetV2 (alpha=0.5), float32" in metadata.description
    assert "64x64, float32" in metadata.input_description
    assert metadata.license.startswith("Apache-2.0")  # random weights: no source's terms


@pytest.mark.slow
def test_weights_name_their_source_and_terms(tmp_path):
    from keras_shufflenet.weights import _registry

    model = _model()
    model.save_weights(tmp_path / "mine.weights.h5")
    loaded = models.build_model(models.v2_spec(0.5), weights=str(tmp_path / "mine.weights.h5"),
                                input_shape=(SIZE, SIZE, 3))  # fmt: skip
    path = export_tflite(loaded, tmp_path / "file.tflite", "float32")
    assert "weights: from the file mine.weights.h5" in describe_tflite(path).metadata.description
    # What the builder records for weights="imagenet" (the download is tested elsewhere).
    model._keras_shufflenet_weights = "imagenet"
    path = export_tflite(model, tmp_path / "imagenet.tflite", "float32")
    metadata = describe_tflite(path).metadata
    entry = _registry.get_entry(models.v2_spec(0.5))
    assert metadata.license == entry.terms and entry.terms.startswith("BSD-3-Clause")
    assert "torchvision ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1" in metadata.description


def test_a_fine_tuned_model_takes_its_labels(tmp_path):
    model = _model(classes=3)
    path = export_tflite(model, tmp_path / "m.tflite", "float16", labels=list(NAMES))
    assert describe_tflite(path).metadata.labels == NAMES
    # Without names, a model of other than 1000 classes carries none.
    path = export_tflite(model, tmp_path / "bare.tflite", "float32")
    metadata = describe_tflite(path).metadata
    assert metadata.labels is None and metadata.output_name == "probability"


def test_a_feature_extractor_carries_metadata_without_labels(tmp_path):
    model = _model(include_top=False, pooling="avg")
    path = export_tflite(model, tmp_path / "m.tflite", "float32")
    metadata = describe_tflite(path).metadata
    assert metadata.labels is None and metadata.output_name == "features"
    assert metadata.mean == (0.0,) and "features (1024,)" in metadata.output_description
    with pytest.raises(ValueError, match="no `predictions` head.*Received: labels of 3 classes"):
        export_tflite(model, tmp_path / "x.tflite", "float32", labels=NAMES)
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize("labels, message", [
    (["a", "b"], "must name each of the model's 3 classes. Received: 2 labels"),
    ("abc", "must be a list of class names"),
    ([1, 2, 3], "must be a list of class names"),
])  # fmt: skip
def test_bad_labels_are_refused(labels, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export_tflite(_model(classes=3), tmp_path / "m.tflite", "float32", labels=labels)


def test_the_default_int8_export_takes_uint8_and_says_so(tmp_path):
    pixels = np.random.default_rng(0).uniform(0, 255, (10, SIZE, SIZE, 3)).astype("float32")
    path = export_tflite(_model(), tmp_path / "m.tflite", "int8", pixels)
    described = describe_tflite(path)
    (image,), (scores,) = described.inputs, described.outputs
    assert image.dtype == scores.dtype == "uint8" and image.shape == (1, SIZE, SIZE, 3)
    assert image.quantization[0] == pytest.approx(1.0, rel=0.02) and image.quantization[1] == 0
    assert "uint8" in described.metadata.input_description
    assert len(described.metadata.labels) == 1000


def test_info_describes_a_tflite_file(tmp_path, capsys):
    path = export_tflite(_model(classes=3), tmp_path / "m.tflite", "float32", labels=NAMES)
    assert cli.main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("m.tflite: ") and lines[0].endswith(" MB")
    assert lines[1].startswith("input   float32  1x64x64x3") and lines[1].count("float") == 2
    assert lines[2].startswith("output  float32  1x3 ")
    ops = dict(item.rsplit(" ", 1) for item in lines[3].split(": ", 1)[1].split(", "))
    assert int(lines[3].split()[1].rstrip(":")) == sum(map(int, ops.values()))
    assert int(ops["CONV_2D"]) > 10 and "REVERSE_V2" in ops
    assert "  normalisation  mean 0, std 1" in lines
    assert "  labels         3 classes (circle, square, triangle)" in lines


def test_info_of_a_file_without_metadata_and_of_a_bad_file(tmp_path, capsys):
    import tensorflow as tf

    plain = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda x: x * 2.0).get_concrete_function(tf.TensorSpec((1, 4)))]
    ).convert()
    (tmp_path / "plain.tflite").write_bytes(plain)
    assert cli.main(["info", str(tmp_path / "plain.tflite")]) == 0
    assert "metadata  none (MediaPipe Tasks needs it)" in capsys.readouterr().out
    (tmp_path / "bad.tflite").write_bytes(b"not a model")
    assert cli.main(["info", str(tmp_path / "bad.tflite")]) == 2
    assert "Expected a TFLite model" in capsys.readouterr().err


@pytest.mark.slow
def test_saved_class_names_go_with_the_model_everywhere(tmp_path):
    """A model saved as `finetune` saves it (its class names beside it): export
    writes them into the metadata, predict names them, `--class-index`
    overrides them."""
    from keras_shufflenet import runtime

    model = _model(classes=3)
    model.save(tmp_path / "model.keras")
    written = runtime.save_class_names(tmp_path / "model.keras", NAMES)
    assert written == tmp_path / "model.labels.txt"
    assert written.read_text() == "circle\nsquare\ntriangle\n"
    assert runtime.saved_class_names(tmp_path / "model.weights.h5") == list(NAMES)
    result = run_cli(tmp_path, "export", "--keras-model", "model.keras", "--quantization",
                     "float32", "--output", "m.tflite")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert describe_tflite(tmp_path / "m.tflite").metadata.labels == NAMES
    (tmp_path / "other.txt").write_text("a\nb\nc\n")
    result = run_cli(tmp_path, "export", "--keras-model", "model.keras", "--quantization",
                     "float32", "--class-index", "other.txt", "--output", "o.tflite")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert describe_tflite(tmp_path / "o.tflite").metadata.labels == ("a", "b", "c")
    from PIL import Image

    Image.fromarray(np.full((SIZE, SIZE, 3), 90, np.uint8)).save(tmp_path / "x.png")
    result = run_cli(tmp_path, "predict", "x.png", "--keras-model", "model.keras", "--top", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "x.png" and len(lines) == 3
    assert all(line.split()[1] in NAMES for line in lines[1:]), lines


def test_class_names_are_checked_before_they_are_written(tmp_path):
    from keras_shufflenet import runtime

    for names in ([], ["a", "a"], ["a\nb"], [" a"]):
        with pytest.raises(ValueError, match="Class names must be distinct"):
            runtime.save_class_names(tmp_path / "model.keras", names)
    assert not list(tmp_path.iterdir())
