"""`tf.data` input pipelines: ImageNet TFRecords, ImageNet through TFDS, a
folder of class sub-folders, and the procedural dataset of `synthetic`.

Every source is first a stream of records `(source, index, encoded, label)`:
the file (or TFDS record id) and the position of the record in it travel
with the bytes, so a record that is not an image stops the pipeline with an
error naming its file and index, never silently dropped. Records are read in
parallel (`interleave`), decoded and augmented in parallel (`map` with
`AUTOTUNE`), batched and prefetched; nothing is loaded whole into memory
(only file names are listed up front).

Pipelines yield `(images, one_hot_labels)`: float32 RGB pixels in [0, 255]
`(batch, size, size, 3)` and float32 `(batch, classes)`, as the models of
`keras_shufflenet` (preprocessing included) and a label-smoothed loss take
them.

    config = DataConfig(source="folder", train="photos/train", val="photos/val")
    train, steps = training_dataset(config, batch_size=256)
    val = evaluation_dataset(config, batch_size=256)
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from training import augment, synthetic

SOURCES = ("tfrecord", "tfds", "folder", "synthetic")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
IMAGENET_TRAIN_EXAMPLES = 1_281_167
IMAGENET_VAL_EXAMPLES = 50_000
_JPEG_END = (0xFF, 0xD9)


@dataclasses.dataclass
class DataConfig:
    """Where the images are and how they are transformed.

    `train`/`val` mean: for "tfrecord" a glob of shards (`train-*`); for
    "folder" a folder of class sub-folders; for "tfds" the split name
    (`train`, `validation`); for "synthetic" unused.
    """

    source: str = "tfrecord"
    train: str = None
    val: str = None
    num_classes: int = 1000
    label_offset: int = 0  # subtracted from stored labels (1 for 1-based ImageNet TFRecords)
    image_size: int = 224  # training crop
    eval_resize: int = 256
    eval_crop: int = 224
    min_crop_area: float = 0.08
    color_jitter: float = 0.4
    flip: bool = True
    train_examples: int = None  # per epoch; counted for folders, ImageNet's for the others
    val_examples: int = None
    shuffle_buffer: int = 8192
    tfds_data_dir: str = None
    tfds_manual_dir: str = None
    synthetic_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"`source` must be one of {SOURCES}. Received: source={self.source!r}")
        if self.eval_crop > self.eval_resize:
            raise ValueError(
                "`eval_crop` must not exceed `eval_resize`. "
                f"Received: eval_crop={self.eval_crop}, eval_resize={self.eval_resize}"
            )
        if not 0 < self.min_crop_area <= 1:
            raise ValueError(
                f"`min_crop_area` must be in (0, 1]. Received: min_crop_area={self.min_crop_area}"
            )


# ----------------------------------------------------------------------------- records


def tfrecord_records(pattern, training=False, seed=0):
    """Records of TFRecord shards in the standard ImageNet layout
    (`image/encoded`, `image/class/label`), with file and index."""
    files = sorted(tf.io.gfile.glob(pattern)) if isinstance(pattern, str) else list(pattern)
    if not files:
        raise ValueError(f"No TFRecord file matches the pattern. Received: pattern={pattern!r}")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read(path):
        records = tf.data.TFRecordDataset(path, buffer_size=8 << 20).enumerate()
        return records.map(lambda index, record: (path, index, record))

    dataset = dataset.interleave(
        read,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.map(_parse_example, num_parallel_calls=tf.data.AUTOTUNE), len(files)


def _parse_example(source, index, record):
    features = tf.io.parse_single_example(
        record,
        {
            "image/encoded": tf.io.FixedLenFeature((), tf.string),
            "image/class/label": tf.io.FixedLenFeature((), tf.int64),
        },
    )
    return source, index, features["image/encoded"], features["image/class/label"]


def list_folder(folder):
    """`(paths, labels, class_names)` of a folder of class sub-folders (sorted)."""
    if not folder or not os.path.isdir(folder):
        raise ValueError(f"Expected a folder of class sub-folders. Received: folder={folder!r}")
    class_names = sorted(
        entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")
    )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        for root, _, files in sorted(os.walk(os.path.join(folder, name))):
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith("."):
                    paths.append(os.path.join(root, file))
                    labels.append(label)
    if not paths:
        raise ValueError(
            f"Found no image files ({', '.join(IMAGE_EXTENSIONS)}) in class sub-folders. "
            f"Received: folder={folder!r}"
        )
    return paths, labels, class_names


def folder_records(folder, training=False, seed=0):
    """Records of the image files under `folder`'s class sub-folders."""
    paths, labels, class_names = list_folder(folder)
    dataset = tf.data.Dataset.from_tensor_slices(
        (paths, np.arange(len(paths), dtype=np.int64), np.asarray(labels, np.int64))
    )
    if training:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda path, index, label: (path, index, tf.io.read_file(path), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset, len(paths), class_names


def tfds_records(split, data_dir=None, manual_dir=None, training=False):
    """Records of `imagenet2012` through TensorFlow Datasets (manual download)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "The tfds source needs TensorFlow Datasets: `pip install tensorflow-datasets`. "
            "Or convert ImageNet to TFRecord shards and use the tfrecord source."
        ) from error
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=training,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(add_tfds_id=True),
    )
    dataset = dataset.enumerate().map(
        lambda index, example: (example["tfds_id"], index, example["image"], example["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset, builder.info.splits[split].num_examples


# ----------------------------------------------------------------------------- decoding


def check_image(encoded, source, index):
    """`encoded`, after asserting it is a JPEG (complete, with its end marker),
    PNG, GIF or BMP; else an `InvalidArgumentError` naming `source` and `index`."""
    head = tf.io.decode_raw(tf.strings.substr(encoded, 0, 4), tf.uint8)
    head = tf.pad(head, [[0, 4 - tf.shape(head)[0]]])
    length = tf.strings.length(encoded)
    tail = tf.io.decode_raw(
        tf.strings.substr(encoded, tf.maximum(length - 64, 0), 64), tf.uint8
    )
    has_end = tf.reduce_any((tail[:-1] == _JPEG_END[0]) & (tail[1:] == _JPEG_END[1]))
    is_jpeg = tf.reduce_all(head[:3] == [0xFF, 0xD8, 0xFF]) & has_end
    is_png = tf.reduce_all(head == [0x89, 0x50, 0x4E, 0x47])
    is_gif = tf.reduce_all(head == [0x47, 0x49, 0x46, 0x38])
    is_bmp = tf.reduce_all(head[:2] == [0x42, 0x4D])
    valid = is_jpeg | is_png | is_gif | is_bmp
    check = tf.debugging.Assert(
        valid,
        ["Corrupt image record (not a complete JPEG, PNG, GIF or BMP image): file", source,
         "record index", index, "bytes", length],
    )
    with tf.control_dependencies([check]):
        return tf.identity(encoded)


def check_label(label, num_classes, source, index):
    check = tf.debugging.Assert(
        (label >= 0) & (label < num_classes),
        ["Label out of range [0,", num_classes, "): file", source, "record index", index,
         "label", label],
    )
    with tf.control_dependencies([check]):
        return tf.identity(label)


def decode(encoded, source, index):
    """The RGB uint8 image `(H, W, 3)` of a checked record."""
    encoded = check_image(encoded, source, index)
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, (None, None, 3))


def decode_random_crop(encoded, source, index, min_area=0.08):
    """A checked record's random crop (uint8), decoding only the crop of a
    JPEG (`decode_and_crop_jpeg`, as ImageNet pipelines do)."""
    encoded = check_image(encoded, source, index)

    def from_jpeg():
        begin, size = augment.crop_window(tf.image.extract_jpeg_shape(encoded), min_area)
        window = tf.stack([begin[0], begin[1], size[0], size[1]])
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)

    def from_other():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return tf.slice(image, *augment.crop_window(tf.shape(image), min_area))

    crop = tf.cond(tf.io.is_jpeg(encoded), from_jpeg, from_other)
    return tf.ensure_shape(crop, (None, None, 3))


def _transform(config, training):
    if training:
        return lambda image: augment.train_transform(
            image, config.image_size, config.min_crop_area, config.color_jitter, config.flip
        )
    return lambda image: augment.resize_center_crop(image, config.eval_resize, config.eval_crop)


def _decode_records(records, config, training, augmented):
    transform = _transform(config, augmented)
    offset = config.label_offset

    def decode_one(source, index, encoded, label):
        label = check_label(label - offset, config.num_classes, source, index)
        if augmented:
            crop = decode_random_crop(encoded, source, index, config.min_crop_area)
            return augment.finish_crop(crop, config.image_size, config.color_jitter,
                                       config.flip), label
        return transform(decode(encoded, source, index)), label

    return records.map(decode_one, num_parallel_calls=tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- synthetic


def _synthetic_stream(config, training):
    """Images of `synthetic.make_dataset`: for training an endless stream, new
    images in every chunk; for evaluation a fixed held-out set."""
    size, classes = config.synthetic_size, config.num_classes
    spec = (tf.TensorSpec((size, size, 3), tf.uint8), tf.TensorSpec((), tf.int64))
    if not training:
        count = config.val_examples or 1000
        images, labels = synthetic.make_dataset(count, size, classes, seed=(config.seed, 1))
        return tf.data.Dataset.from_tensor_slices((images, labels))

    def generate():
        chunk = 0
        while True:
            images, labels = synthetic.make_dataset(1024, size, classes, seed=(config.seed, 0, chunk))
            yield from zip(images, labels)
            chunk += 1

    return tf.data.Dataset.from_generator(generate, output_signature=spec)


# ----------------------------------------------------------------------------- pipelines


def _examples(config, training, augmented=None):
    """`(dataset of (image, label), examples per pass)` before batching: the
    training split (shuffled, endless for synthetic) or the validation one,
    transformed for training if `augmented` (defaults to `training`)."""
    augmented = training if augmented is None else augmented
    split = config.train if training else config.val
    if config.source == "synthetic":
        dataset = _synthetic_stream(config, training)
        transform = _transform(config, augmented)
        dataset = dataset.map(
            lambda image, label: (transform(image), label), num_parallel_calls=tf.data.AUTOTUNE
        )
        count = (config.train_examples or 4096) if training else (config.val_examples or 1000)
        return dataset, count
    if split is None:
        raise ValueError(
            f"The {'training' if training else 'validation'} data is not set for "
            f"source={config.source!r}. Received: {'train' if training else 'val'}=None"
        )
    if config.source == "tfrecord":
        records, _ = tfrecord_records(split, training, config.seed)
        default = IMAGENET_TRAIN_EXAMPLES if training else IMAGENET_VAL_EXAMPLES
    elif config.source == "folder":
        records, default, class_names = folder_records(split, training, config.seed)
        if len(class_names) != config.num_classes:
            raise ValueError(
                f"The folder has {len(class_names)} classes but num_classes is "
                f"{config.num_classes}. Received: folder={split!r}"
            )
    else:
        records, default = tfds_records(
            split, config.tfds_data_dir, config.tfds_manual_dir, training
        )
    count = (config.train_examples if training else config.val_examples) or default
    if training:
        records = records.shuffle(config.shuffle_buffer, seed=config.seed)
    return _decode_records(records, config, training, augmented), count


def _finish(dataset, config, batch_size, drop_remainder, training):
    """Batches, one-hot labels, prefetch.

    Training batches come in any order of the parallel steps above (faster),
    from one endless iterator per `fit`, tuned by tf.data's autotuner. Every
    other dataset is read in order, one pass per iterator: there the
    autotuner is off (parallel steps use one thread per core), because
    deleting an iterator waits for the autotuner's next wake-up, whose period
    doubles from 10 ms (epochs of 1.6 s over a one-pass dataset measured 2.6 s).
    """
    classes = config.num_classes
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        lambda images, labels: (images, tf.one_hot(labels, classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = not training
    options.autotune.enabled = training
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def training_dataset(config, batch_size):
    """`(dataset, steps_per_epoch)`: endless augmented batches of `batch_size`
    (the global batch), and the steps that make one pass over the examples."""
    dataset, count = _examples(config, training=True)
    steps = count // batch_size
    if steps < 1:
        raise ValueError(
            f"An epoch needs at least one full batch: {count} examples, batch {batch_size}. "
            f"Received: batch_size={batch_size}"
        )
    return _finish(dataset.repeat(), config, batch_size, True, training=True), steps


def evaluation_dataset(config, batch_size, limit=None):
    """One pass of centre-cropped batches (the last one may be smaller),
    optionally of the first `limit` examples."""
    dataset, _ = _examples(config, training=False)
    if limit:
        dataset = dataset.take(limit)
    return _finish(dataset, config, batch_size, False, training=False)


def calibration_dataset(config, batch_size, steps):
    """`steps` batches of training images with the evaluation transform, for
    BatchNorm recalibration (shuffled with the seed, not augmented, in a
    deterministic order: every worker of a cluster gets the same batches)."""
    dataset, _ = _examples(config, training=True, augmented=False)
    return _finish(dataset.repeat(), config, batch_size, True, training=False).take(steps)


__all__ = [
    "DataConfig",
    "SOURCES",
    "calibration_dataset",
    "check_image",
    "decode",
    "decode_random_crop",
    "evaluation_dataset",
    "folder_records",
    "list_folder",
    "tfds_records",
    "tfrecord_records",
    "training_dataset",
]
