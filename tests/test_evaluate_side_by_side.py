"""`keras-shufflenet evaluate`: a model fine-tuned on generated classes and its
int8, float16, float32 and ONNX exports, side by side on a labelled folder."""

import numpy as np
import pytest
from PIL import Image

import keras_shufflenet as ks
from keras_shufflenet import cli, runtime
from training import synthetic

SIZE, CLASSES, VAL = 64, 4, 48
EPOCHS, IMAGES_PER_EPOCH = 10, 2048  # about 70% top-1 on held-out images (chance: 25%)


def _labelled_folder(folder, model, exports, epochs):
    """Trains `model` on generated classes (new images every epoch), writes it,
    its `exports` and a labelled folder of held-out images named by class."""
    import keras

    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    for epoch in range(epochs):
        images, labels = synthetic.make_dataset(IMAGES_PER_EPOCH, SIZE, CLASSES, seed=(0, epoch))
        model.fit(images.astype("float32"), labels, batch_size=32, epochs=1, verbose=0)
    model.save(folder / "model.keras")
    calibration = synthetic.make_dataset(64, SIZE, CLASSES, seed=2)[0].astype("float32")
    for quantization in exports:
        ks.export_tflite(model, folder / f"m_{quantization}.tflite", quantization, calibration)
    names = synthetic.CLASS_NAMES[:CLASSES]
    val_images, val_labels = synthetic.make_dataset(VAL, SIZE, CLASSES, seed=1)
    for i, (image, label) in enumerate(zip(val_images, val_labels)):
        (folder / "val" / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / "val" / names[label] / f"{i:03d}.png")
    # Index order differs from sorted folder order: only the index gives the labels.
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    return folder, model, val_images, val_labels


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """A ShuffleNetV2 0.5x trained on 4 generated classes and all its exports."""
    folder = tmp_path_factory.mktemp("side_by_side")
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES)
    found = _labelled_folder(folder, model, ("int8", "float16", "float32"), EPOCHS)
    ks.export_onnx(model, folder / "m.onnx")
    return found


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """The same layout, cheaply: an untrained model and its float32 export."""
    folder = tmp_path_factory.mktemp("side_by_side_untrained")
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES)
    return _labelled_folder(folder, model, ("float32",), 0)


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _rows(table):
    """`{model: (kind, top-1, top-1 = Keras)}` and the heading line (4
    classes: no top-5 column, it would always be 100%)."""
    lines = table.strip().splitlines()
    assert "top-5" not in lines[1], lines[1]
    rows = {}
    for line in lines[3:]:
        name, *kind, top1, agreement, _, _ = line.split()
        rows[name] = (" ".join(kind), top1, agreement)
    return rows, lines[0]


@pytest.mark.slow
def test_every_export_side_by_side_with_top1(fine_tuned, capfd):
    folder, model, val_images, val_labels = fine_tuned
    exports = [folder / f"m_{q}.tflite" for q in ("int8", "float16", "float32")] + [folder / "m.onnx"]
    code, out, err = _run(
        ["evaluate", *exports, "--keras-model", folder / "model.keras", "--images",
         folder / "val", "--class-index", folder / "classes.txt", "--resize", SIZE, "--crop", SIZE],
        capfd,  # the progress bar writes to the process's stderr
    )  # fmt: skip
    assert code == 0, err
    rows, heading = _rows(out)
    assert heading == f"{VAL} images ({VAL} labelled, labels from class index), resize {SIZE} -> centre crop {SIZE}"
    assert {name: row[0] for name, row in rows.items()} == {
        "keras": "keras", "m_int8.tflite": "tflite uint8", "m_float16.tflite": "tflite float32",
        "m_float32.tflite": "tflite float32", "m.onnx": "onnx",
    }  # fmt: skip

    # The Keras figures, computed here from the images and their labels.
    probabilities = model.predict(val_images.astype("float32"), verbose=0)
    ranked = np.argsort(-probabilities, axis=-1)
    top1 = np.mean(ranked[:, 0] == val_labels)
    assert rows["keras"][1:] == (f"{top1 * 100:.2f}%", "100.00%")
    assert 0.5 < top1 < 1.0  # trained: above chance (0.25), not trivially perfect
    # Float exports answer as the Keras model does; int8's top-1 is LiteRT's own.
    for name in ("m_float16.tflite", "m_float32.tflite", "m.onnx"):
        assert rows[name][1:] == rows["keras"][1:], name
    batches = [(val_images.astype("float32"), val_labels)]
    int8_top1 = runtime.tflite_top1(folder / "m_int8.tflite", batches)
    assert rows["m_int8.tflite"][1] == f"{int8_top1 * 100:.2f}%"
    assert f"{VAL}/{VAL}" in err  # the progress bar, on stderr


def test_without_the_class_index_the_labels_are_sorted_folder_names(untrained, capsys):
    folder, *_ = untrained
    code, out, err = _run(
        ["evaluate", folder / "m_float32.tflite", "--keras-model", folder / "model.keras",
         "--images", folder / "val"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "labels from folders), resize 73 -> centre crop 64" in out  # 64 * 256 / 224


@pytest.mark.parametrize("case", ["unknown class", "no images", "unreadable image", "bad index"])
def test_bad_folders_exit_2_with_one_error_line(case, untrained, tmp_path, capsys):
    folder, *_ = untrained
    images, index = tmp_path / "val", folder / "classes.txt"
    (images / "circle").mkdir(parents=True)
    Image.fromarray(np.zeros((SIZE, SIZE, 3), "uint8")).save(images / "circle" / "a.png")
    expected = {
        "unknown class": "Received unknown classes: hexagon",
        "no images": "No images",
        "unreadable image": "Could not load",
        "bad index": "Expected a class index of distinct class names",
    }[case]
    if case == "unknown class":
        (images / "hexagon").mkdir()
        Image.fromarray(np.zeros((SIZE, SIZE, 3), "uint8")).save(images / "hexagon" / "b.png")
    elif case == "no images":
        images = tmp_path / "empty"
        images.mkdir()
        (images / "README.txt").write_text("no photos")
    elif case == "unreadable image":
        (images / "circle" / "b.png").write_text("not a picture")
    else:
        index = tmp_path / "index.json"
        index.write_text('["circle", "circle"]')
    code, out, err = _run(
        ["evaluate", folder / "m_float32.tflite", "--keras-model", folder / "model.keras",
         "--images", images, "--class-index", index, "--crop", SIZE], capsys,
    )  # fmt: skip
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len([line for line in lines if line.startswith("error:")]) == 1
    assert lines[-1].startswith("error: ") and expected in lines[-1], lines[-1]
