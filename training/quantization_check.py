"""Does int8 keep the accuracy of a trained ShuffleNet? Train, quantize, measure.

The pipeline behind `benchmarks/quantization_accuracy.py` and
`tests/test_quantization_accuracy.py`:

1. generate the held-out split of `training.synthetic` (seed `(seed, 1)`)
   and, for every training epoch, `train_images` new training images (seed
   `(seed, 0, epoch)`; QAT epochs continue that stream), so the model never
   sees an image twice and cannot memorise: with a fixed set of a few
   thousand images ShuffleNet memorises it before it learns the shapes;
2. train a small ShuffleNet from scratch (Keras 3, Adam, one warm-up epoch
   then cosine decay);
3. measure top-1 on the held-out split of the float Keras model, its float32
   TFLite model, its full-int8 post-training-quantized TFLite model
   (`export_tflite(..., "int8", calibration images from the first epoch)`),
   and, after quantization-aware fine-tuning of
   `keras_shufflenet.quantization.quantize_model(model, representative_data=
   calibration images)` (tf_keras, tfmot; ranges start where PTQ's are),
   of the QAT model and its full-int8 TFLite model.

TFLite models run batch 1 through the LiteRT interpreter with the
quantize/dequantize handling of `keras_shufflenet.runtime` (uint8 pixels
in [0, 255] quantized with the input's scale and zero point).

    result = run(Config(model="v2", train_images=4000, epochs=12), out_dir)
    print(markdown_table(result))
"""

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from training import synthetic

MODELS = ("v2", "v1")
MODEL_NAMES = {"v2": "ShuffleNetV2 0.5x", "v1": "ShuffleNetV1 g3 0.5x"}


@dataclasses.dataclass
class Config:
    """What to train and how. Defaults are the benchmark's full run."""

    model: str = "v2"  # "v2": ShuffleNetV2(alpha=0.5); "v1": ShuffleNetV1(groups=3, alpha=0.5)
    num_classes: int = synthetic.NUM_CLASSES
    image_size: int = 64
    train_images: int = 4000  # new images per epoch
    val_images: int = 2000
    calibration_images: int = 200
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 1e-2  # peak, after one epoch of linear warm-up
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    seed: int = 0
    # Also fine-tune the float model as QAT is (same data, optimizer and
    # steps): tells what QAT gains from the extra training alone.
    float_control: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={self.model!r}")
        if not 10 <= self.calibration_images <= self.train_images:
            raise ValueError(
                "`calibration_images` must be from 10 to `train_images`. "
                f"Received: calibration_images={self.calibration_images!r}"
            )


def build_model(config):
    """The float Keras 3 model, randomly initialised, softmax output."""
    import keras_shufflenet as ks

    shape = (config.image_size, config.image_size, 3)
    if config.model == "v2":
        return ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=shape,
                               classes=config.num_classes)
    return ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=shape,
                           classes=config.num_classes)


def train_split(config, epoch):
    """The `epoch`-th set of training images: float32 pixels in [0, 255], int labels."""
    x, y = synthetic.make_dataset(
        config.train_images, config.image_size, config.num_classes, seed=(config.seed, 0, epoch)
    )
    return x.astype(np.float32), y


def val_split(config):
    """The held-out images: float32 pixels in [0, 255], int labels."""
    x, y = synthetic.make_dataset(
        config.val_images, config.image_size, config.num_classes, seed=(config.seed, 1)
    )
    return x.astype(np.float32), y


def _fit_epochs(model, config, first_epoch, epochs):
    """Trains one epoch per new training set; returns the last epoch's loss."""
    loss = float("nan")
    for epoch in range(first_epoch, first_epoch + epochs):
        x, y = train_split(config, epoch)
        history = model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True,
                            verbose=0)
        loss = float(history.history["loss"][-1])
    return loss


def train_float(model, config):
    """Trains the Keras 3 `model` from scratch; returns the last epoch's loss."""
    import keras

    steps_per_epoch = -(-config.train_images // config.batch_size)
    total = config.epochs * steps_per_epoch
    warmup = min(steps_per_epoch, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate / 100, total - warmup, alpha=0.01,
        warmup_target=config.learning_rate, warmup_steps=warmup,
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy")
    return _fit_epochs(model, config, 0, config.epochs)


def keras_top1(model, x, y, batch_size=250):
    """Top-1 accuracy of a Keras 3 or tf_keras model."""
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(predictions, -1) == y))


def fine_tune_qat(model, config, calibration):
    """QAT model of `model`, its activation ranges calibrated on the
    `calibration` images, fine-tuned with a small constant learning rate on
    the next `qat_epochs` training sets."""
    from keras_shufflenet.quantization import quantize_model, tf_keras

    qat_model = quantize_model(model, representative_data=calibration, engine="tfmot")
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(config.qat_learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    _fit_epochs(qat_model, config, config.epochs, config.qat_epochs)
    return qat_model


def fine_tune_float(model, config):
    """A copy of the Keras 3 `model` fine-tuned exactly as `fine_tune_qat` does."""
    import keras

    control = keras.models.clone_model(model)
    control.set_weights(model.get_weights())
    control.compile(optimizer=keras.optimizers.Adam(config.qat_learning_rate),
                    loss="sparse_categorical_crossentropy")
    _fit_epochs(control, config, config.epochs, config.qat_epochs)
    return control


def run(config=None, out_dir=None, log=None):
    """Runs the whole pipeline; returns a JSON-able dict of the results.

    Args:
        config: A `Config`. Defaults to `Config()`.
        out_dir: Folder for the `.tflite` files. Defaults to a temporary
            folder, deleted afterwards.
        log: A `print`-like function for progress, or `None`.

    Returns:
        A dict with `config`, `dataset`, `seconds` (per stage), `top1`
        (fractions: `keras_float`, `tflite_float32`, `tflite_int8_ptq`,
        `keras_qat`, `tflite_int8_qat` and, with `float_control`,
        `keras_float_fine_tuned`), `delta_points` (each minus
        `keras_float`, in percentage points), `tflite_bytes`,
        `tflite_files` and, with `float_control`,
        `qat_vs_float_control_points` (int8 QAT minus the float model
        fine-tuned alike).
    """
    config = config or Config()
    if out_dir is None:
        with tempfile.TemporaryDirectory() as folder:
            return run(config, folder, log)
    log = log or (lambda *args: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    import keras

    from keras_shufflenet import runtime
    from keras_shufflenet.export import export_tflite

    seconds, top1, files = {}, {}, {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now
        log(f"{name}: {seconds[name]:.1f} s")

    keras.utils.set_random_seed(config.seed)
    x_val, y_val = val_split(config)
    calibration = train_split(config, 0)[0][: config.calibration_images]
    lap("data")

    model = build_model(config)
    loss = train_float(model, config)
    lap("train_float")
    top1["keras_float"] = keras_top1(model, x_val, y_val)
    log(f"float top-1: {top1['keras_float']:.4f}")

    stem = f"{config.model}_{config.num_classes}c_{config.image_size}px"
    files["tflite_float32"] = export_tflite(
        model, out_dir / f"{stem}_float32.tflite", "float32"
    )
    files["tflite_int8_ptq"] = export_tflite(
        model, out_dir / f"{stem}_int8_ptq.tflite", "int8",
        calibration,
    )
    lap("export_float")

    def tflite_top1(path):
        return runtime.tflite_top1(path, [(x_val, y_val)], num_threads=1)

    top1["tflite_float32"] = tflite_top1(files["tflite_float32"])
    top1["tflite_int8_ptq"] = tflite_top1(files["tflite_int8_ptq"])
    lap("eval_tflite_float")

    keras.utils.set_random_seed(config.seed + 2)
    qat_model = fine_tune_qat(model, config, calibration)
    lap("train_qat")
    top1["keras_qat"] = keras_top1(qat_model, x_val, y_val)
    log(f"QAT (fake quant) top-1: {top1['keras_qat']:.4f}")
    files["tflite_int8_qat"] = export_tflite(
        qat_model, out_dir / f"{stem}_int8_qat.tflite", "int8", input_size=config.image_size
    )
    top1["tflite_int8_qat"] = tflite_top1(files["tflite_int8_qat"])
    lap("qat_export_eval")
    if config.float_control:
        keras.utils.set_random_seed(config.seed + 2)
        control = fine_tune_float(model, config)
        top1["keras_float_fine_tuned"] = keras_top1(control, x_val, y_val)
        lap("float_control")
    seconds["total"] = round(sum(seconds.values()), 2)

    float_top1 = top1["keras_float"]
    result = {
        "model": MODEL_NAMES[config.model],
        "config": dataclasses.asdict(config),
        "dataset": {
            "generator": "training.synthetic.make_dataset",
            "classes": list(synthetic.CLASS_NAMES[: config.num_classes]),
            "train_images_per_epoch": config.train_images,
            "train_images_float": config.train_images * config.epochs,
            "train_images_qat": config.train_images * config.qat_epochs,
            "val_images": config.val_images,
            "calibration_images": config.calibration_images,
            "train_seeds": f"({config.seed}, 0, epoch)",
            "val_seed": f"({config.seed}, 1)",
        },
        "final_train_loss": loss,
        "seconds": seconds,
        "top1": top1,
        "delta_points": {
            name: round((value - float_top1) * 100, 4)
            for name, value in top1.items()
            if name != "keras_float"
        },
        "tflite_bytes": {name: os.path.getsize(path) for name, path in files.items()},
        "tflite_files": {name: os.fspath(path) for name, path in files.items()},
    }
    if config.float_control:
        result["qat_vs_float_control_points"] = round(
            (top1["tflite_int8_qat"] - top1["keras_float_fine_tuned"]) * 100, 4
        )
    return result


ROWS = (
    ("keras_float", "Keras float32"),
    ("tflite_float32", "TFLite float32"),
    ("tflite_int8_ptq", "TFLite int8, post-training quantization"),
    ("keras_qat", "Keras QAT (fake quant, tf_keras)"),
    ("tflite_int8_qat", "TFLite int8, quantization-aware training"),
    ("keras_float_fine_tuned", "Keras float32, fine-tuned as QAT is (control)"),
)


def markdown_table(result):
    """The results of `run` as a markdown table."""
    lines = [
        f"{result['model']}, {len(result['dataset']['classes'])} synthetic classes, "
        f"{result['config']['image_size']}x{result['config']['image_size']}: "
        f"{result['config']['epochs']} epochs of {result['config']['train_images']} new "
        f"training images ({result['seconds']['train_float']:.0f} s) + "
        f"{result['config']['qat_epochs']} QAT epochs ({result['seconds']['train_qat']:.0f} s), "
        f"{result['dataset']['val_images']} held-out images",
        "",
        "| model | held-out top-1 (%) | vs Keras float (points) | size (KB) |",
        "|---|---:|---:|---:|",
    ]
    for key, label in ROWS:
        if key not in result["top1"]:
            continue
        value = result["top1"][key] * 100
        delta = "-" if key == "keras_float" else f"{result['delta_points'][key]:+.2f}"
        size = result["tflite_bytes"].get(key)
        size = "-" if size is None else f"{size / 1024:.0f}"
        lines.append(f"| {label} | {value:.2f} | {delta} | {size} |")
    return "\n".join(lines)


__all__ = ["Config", "build_model", "markdown_table", "run", "train_split", "val_split"]
