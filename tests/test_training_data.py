"""The tf.data pipelines of `training.data` on generated images: TFRecord shards
in the standard ImageNet layout and a folder of class sub-folders (labels,
shapes, value ranges), corrupt records named by file and index, and the
transforms of `training.augment`."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from training import augment, data, synthetic  # noqa: E402

SIZE = 48


def encode(image, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, quality=95)
    return buffer.getvalue()


def write_shards(folder, images, labels, shards=2, label_offset=1, corrupt=None):
    """Standard-layout shards; `corrupt={(shard, index): bytes}` replaces records."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"train-{k:05d}-of-{shards:05d}" for k in range(shards)]
    writers = [tf.io.TFRecordWriter(str(path)) for path in paths]
    counts = [0] * shards
    for i, (image, label) in enumerate(zip(images, labels)):
        shard = i % shards
        encoded = (corrupt or {}).get((shard, counts[shard]), encode(image))
        example = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
            "image/class/label": tf.train.Feature(
                int64_list=tf.train.Int64List(value=[int(label) + label_offset])),
            "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"PNG"])),
        }))
        writers[shard].write(example.SerializeToString())
        counts[shard] += 1
    for writer in writers:
        writer.close()
    return paths


def write_folder(folder, images, labels, names=synthetic.CLASS_NAMES):
    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / names[label] / f"{i:04d}.jpg", quality=95)


def config(**kwargs):
    defaults = dict(num_classes=3, image_size=32, eval_resize=SIZE, eval_crop=SIZE)
    return data.DataConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def samples():
    return synthetic.make_dataset(24, image_size=SIZE, num_classes=3, seed=7)


def _collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def _match(outputs, inputs):
    """Index of the input image each output image is (closest, mean abs error)."""
    errors = np.abs(outputs[:, None].astype(np.float32) - inputs[None].astype(np.float32))
    errors = errors.mean((2, 3, 4))
    return errors.argmin(1), errors.min(1)


def test_tfrecord_pipeline_reads_every_record_with_its_label(tmp_path, samples):
    images, labels = samples
    write_shards(tmp_path, images, labels, shards=2, label_offset=1)
    cfg = config(source="tfrecord", val=str(tmp_path / "train-*"), label_offset=1)
    x, y = _collect(data.evaluation_dataset(cfg, batch_size=5))
    assert x.shape == (24, SIZE, SIZE, 3) and x.dtype == np.float32
    assert y.shape == (24, 3) and y.dtype == np.float32 and np.all(y.sum(1) == 1)
    assert x.min() >= 0 and x.max() <= 255 and x.max() > 200  # pixels in [0, 255]
    index, error = _match(x, images)
    assert sorted(index) == list(range(24))  # each record once
    assert error.max() < 0.01  # lossless PNG, resize to the same size
    np.testing.assert_array_equal(y.argmax(1), labels[index])


def test_tfrecord_training_batches_are_augmented_crops(tmp_path, samples):
    images, labels = samples
    write_shards(tmp_path, images, labels, shards=3, label_offset=0)
    cfg = config(source="tfrecord", train=str(tmp_path / "train-*"), train_examples=24,
                 shuffle_buffer=16)
    dataset, steps = data.training_dataset(cfg, batch_size=8)
    assert steps == 3
    seen = []
    for x, y in dataset.take(6):  # two passes: the stream repeats
        assert x.shape == (8, 32, 32, 3) and x.dtype == tf.float32
        assert float(tf.reduce_min(x)) >= 0 and float(tf.reduce_max(x)) <= 255
        assert y.shape == (8, 3) and np.all(y.numpy().sum(1) == 1)
        seen.extend(y.numpy().argmax(1))
    assert np.bincount(seen, minlength=3).min() >= 8  # balanced labels, all classes


def test_folder_pipeline_labels_from_sorted_sub_folders(tmp_path, samples):
    images, labels = samples
    write_folder(tmp_path, images, labels)
    paths, folder_labels, names = data.list_folder(str(tmp_path))
    assert names == sorted(synthetic.CLASS_NAMES[:3]) and len(paths) == 24
    cfg = config(source="folder", val=str(tmp_path))
    x, y = _collect(data.evaluation_dataset(cfg, batch_size=7))
    assert x.shape == (24, SIZE, SIZE, 3) and x.min() >= 0 and x.max() <= 255
    # The JPEG files as Pillow decodes them, in the order of `paths`.
    decoded = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    index, error = _match(x, decoded)
    assert sorted(index) == list(range(24))
    assert error.max() < 2.5  # TF's and Pillow's JPEG decoders differ by about a level
    expected = np.asarray(folder_labels)[index]
    assert [names[k] for k in expected] == [
        synthetic.CLASS_NAMES[labels[int(Path(paths[i]).stem)]] for i in index
    ]
    np.testing.assert_array_equal(y.argmax(1), expected)
    train, steps = data.training_dataset(config(source="folder", train=str(tmp_path)), 6)
    assert steps == 4
    x, _ = next(iter(train))
    assert x.shape == (6, 32, 32, 3)


@pytest.mark.parametrize("bad", [b"this is not an image", "truncated"])
def test_a_corrupt_record_is_reported_with_its_file_and_index(tmp_path, samples, bad):
    images, labels = samples
    if bad == "truncated":
        bad = encode(images[0], "JPEG")[:300]
    paths = write_shards(tmp_path, images, labels, shards=2, corrupt={(1, 5): bad})
    cfg = config(source="tfrecord", val=str(tmp_path / "train-*"), label_offset=1)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _collect(data.evaluation_dataset(cfg, batch_size=4))
    message = str(info.value)
    assert "Corrupt image record" in message
    assert str(paths[1]) in message and "record index] [5]" in message.replace('"', "")


def test_a_corrupt_file_in_a_folder_is_reported_with_its_path(tmp_path, samples):
    images, labels = samples
    write_folder(tmp_path, images, labels)
    broken = sorted((tmp_path / "square").iterdir())[1]
    broken.write_bytes(b"\x00" * 100)
    cfg = config(source="folder", train=str(tmp_path))
    dataset, _ = data.training_dataset(cfg, batch_size=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Corrupt image record") as info:
        for _ in dataset.take(20):
            pass
    assert str(broken) in str(info.value)


def test_a_label_out_of_range_is_reported(tmp_path, samples):
    images, labels = samples
    paths = write_shards(tmp_path, images, labels + 5, shards=1, label_offset=0)
    cfg = config(source="tfrecord", val=str(tmp_path / "train-*"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Label out of range") as info:
        _collect(data.evaluation_dataset(cfg, batch_size=4))
    assert str(paths[0]) in str(info.value)


def test_resize_center_crop_matches_pillow_evaluation():
    from keras_shufflenet._images import load_image

    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(90, 120, 3)), 0), 1)
    smooth = (255 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.uint8)
    ours = augment.resize_center_crop(tf.constant(smooth), 73, 64).numpy()
    buffer = io.BytesIO()
    Image.fromarray(smooth).save(buffer, format="PNG")
    buffer.seek(0)
    reference = load_image(buffer, 73, 64).astype(np.float32)
    assert ours.shape == (64, 64, 3)
    assert np.abs(ours - reference).mean() < 1.0


def test_train_transform_shapes_ranges_and_jitter():
    image = tf.constant(synthetic.make_dataset(1, 64, seed=1)[0][0])
    out = augment.train_transform(image, 40, min_area=0.08, jitter=0.4)
    assert out.shape == (40, 40, 3) and out.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255
    plain = tf.cast(image, tf.float32)
    assert augment.color_jitter(plain, 0.0) is plain
    jittered = [augment.color_jitter(plain, 0.4).numpy() for _ in range(4)]
    assert max(np.abs(j - plain.numpy()).mean() for j in jittered) > 1.0


def test_synthetic_source_streams_new_images():
    cfg = config(source="synthetic", num_classes=8, image_size=32, synthetic_size=32,
                 eval_resize=32, eval_crop=32, train_examples=64, val_examples=40)
    train, steps = data.training_dataset(cfg, batch_size=16)
    assert steps == 4
    batches = [x.numpy() for x, _ in train.take(3)]
    assert all(b.shape == (16, 32, 32, 3) for b in batches)
    x, y = _collect(data.evaluation_dataset(cfg, batch_size=16))
    assert x.shape == (40, 32, 32, 3) and y.shape == (40, 8)


def test_one_pass_datasets_are_ordered_and_skip_the_autotuner():
    # Deleting an iterator waits for the autotuner's next wake-up: one-pass
    # datasets (a new iterator every validation) keep it off.
    cfg = config(source="synthetic", num_classes=4, image_size=32, synthetic_size=32,
                 eval_resize=32, eval_crop=32, train_examples=32, val_examples=8)
    train, _ = data.training_dataset(cfg, batch_size=8)
    assert train.options().autotune.enabled and not train.options().deterministic
    for one_pass in (data.evaluation_dataset(cfg, 4), data.calibration_dataset(cfg, 4, 2)):
        assert one_pass.options().autotune.enabled is False
        assert one_pass.options().deterministic
        a, b = (np.concatenate([x.numpy() for x, _ in one_pass]) for _ in range(2))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"source": "lmdb"}, {"eval_resize": 200, "eval_crop": 224}, {"min_crop_area": 0.0}],
)
def test_data_config_refuses_bad_values(kwargs):
    with pytest.raises(ValueError, match="Received:"):
        data.DataConfig(**kwargs)


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="No TFRecord file matches"):
        data.tfrecord_records(str(tmp_path / "nothing-*"))
    with pytest.raises(ValueError, match="class sub-folders"):
        data.list_folder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="validation data is not set"):
        data.evaluation_dataset(config(source="folder"), 4)


def test_tfds_source_names_the_package_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        data.tfds_records("validation")
