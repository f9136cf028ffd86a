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
   and, after quantization-aware fine-tuning with each engine of
   `keras_shufflenet.quantization.quantize_model(model, representative_data=
   calibration images, engine=...)` (ranges start where PTQ's are): tfmot
   (tf_keras) in this process, Keras 3 on `keras_backend` (JAX) in a
   subprocess that saves the QAT model as `.keras` for this (TensorFlow)
   process to export; each QAT model and its full-int8 TFLite file, and a
   float control fine-tuned alike. Each training's median step time is
   measured as it runs.

TFLite models run batch 1 through the LiteRT interpreter with the
quantize/dequantize handling of `keras_shufflenet.runtime` (uint8 pixels
in [0, 255] quantized with the input's scale and zero point).

    result = run(Config(model="v1", alpha=0.25, sizes=4, epochs=16), out_dir)
    print(markdown_table(result))
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training import synthetic

MODELS = ("v2", "v1")
ROOT = Path(__file__).resolve().parents[1]
QAT_ENGINES = ("tfmot", "keras")


@dataclasses.dataclass
class Config:
    """What to train and how. Defaults are the benchmark's full run."""

    model: str = "v1"  # "v2": ShuffleNetV2(alpha); "v1": ShuffleNetV1(groups=3, alpha)
    alpha: float = 0.25  # width: one of ShuffleNetV2's or ShuffleNetV1's alphas
    num_classes: int = synthetic.NUM_CLASSES
    sizes: int = 4  # size bins per class: `num_classes * sizes` classes (`synthetic`)
    contrast: float = 1.0  # of the images (`synthetic`): small is faint
    image_size: int = 32
    train_images: int = 4000  # new images per epoch
    val_images: int = 5000
    calibration_images: int = 200
    epochs: int = 16
    batch_size: int = 64
    learning_rate: float = 1e-2  # peak, after one epoch of linear warm-up
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    seed: int = 0
    # Also fine-tune the float model as QAT is (same data, optimizer and
    # steps, on `keras_backend`): tells what QAT gains from the extra
    # training alone.
    float_control: bool = True
    qat_engines: tuple = QAT_ENGINES  # `quantize_model` engines to fine-tune
    keras_backend: str = "jax"  # where the Keras 3 QAT model and the control train

    @property
    def classes(self):
        """Number of labels: `num_classes * sizes`."""
        return self.num_classes * self.sizes

    @property
    def model_name(self):
        """"ShuffleNetV2 0.5x", "ShuffleNetV1 g3 0.25x", ..."""
        if self.model == "v2":
            return f"ShuffleNetV2 {self.alpha:g}x"
        return f"ShuffleNetV1 g3 {self.alpha:g}x"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={self.model!r}")
        if not set(self.qat_engines) <= set(QAT_ENGINES):
            raise ValueError(
                f"`qat_engines` must be some of {QAT_ENGINES}. "
                f"Received: qat_engines={self.qat_engines!r}"
            )
        if self.keras_backend not in ("jax", "torch", "tensorflow"):
            raise ValueError(
                "`keras_backend` must be 'jax', 'torch' or 'tensorflow'. "
                f"Received: keras_backend={self.keras_backend!r}"
            )
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
        return ks.ShuffleNetV2(alpha=config.alpha, weights=None, input_shape=shape,
                               classes=config.classes)
    return ks.ShuffleNetV1(groups=3, alpha=config.alpha, weights=None, input_shape=shape,
                           classes=config.classes)


def train_split(config, epoch):
    """The `epoch`-th set of training images: float32 pixels in [0, 255], int labels."""
    x, y = synthetic.make_dataset(
        config.train_images, config.image_size, config.num_classes, seed=(config.seed, 0, epoch),
        sizes=config.sizes, contrast=config.contrast,
    )
    return x.astype(np.float32), y


def val_split(config):
    """The held-out images: float32 pixels in [0, 255], int labels."""
    x, y = synthetic.make_dataset(
        config.val_images, config.image_size, config.num_classes, seed=(config.seed, 1),
        sizes=config.sizes, contrast=config.contrast,
    )
    return x.astype(np.float32), y


class _StepClock:
    """Wall time of each training step: the time between the ends of
    consecutive steps of an epoch (the first step of each epoch, which may
    include compilation, is not counted). It waits for each step's loss, so
    a backend that dispatches asynchronously (JAX) is timed too."""

    def __init__(self):
        self.seconds = []
        self._last = None

    def callback(self, base):
        """A callback of the `base` class (Keras 3's or tf_keras's) that records the steps."""
        clock = self

        class StepClock(base):
            def on_train_batch_end(self, batch, logs=None):
                if logs and "loss" in logs:
                    float(logs["loss"])  # waits for the step
                now = time.perf_counter()
                if batch > 0:
                    clock.seconds.append(now - clock._last)
                clock._last = now

        return StepClock()

    def median_ms(self):
        """Median step time in milliseconds (NaN before two steps of an epoch)."""
        return float(np.median(self.seconds) * 1000) if self.seconds else float("nan")


def _fit_epochs(model, config, first_epoch, epochs, callbacks=()):
    """Trains one epoch per new training set; returns the last epoch's loss."""
    loss = float("nan")
    for epoch in range(first_epoch, first_epoch + epochs):
        x, y = train_split(config, epoch)
        history = model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True,
                            verbose=0, callbacks=list(callbacks))
        loss = float(history.history["loss"][-1])
    return loss


def train_float(model, config, clock=None):
    """Trains the Keras 3 `model` from scratch; returns the last epoch's loss.
    A `_StepClock` `clock` records the step times."""
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
    callbacks = [clock.callback(keras.callbacks.Callback)] if clock else []
    return _fit_epochs(model, config, 0, config.epochs, callbacks)


def keras_top1(model, x, y, batch_size=250):
    """Top-1 accuracy of a Keras 3 or tf_keras model."""
    return float(np.mean(keras_predictions(model, x, batch_size) == y))


def keras_predictions(model, x, batch_size=250):
    """The top class of each image, by a Keras 3 or tf_keras model."""
    return np.argmax(model.predict(x, batch_size=batch_size, verbose=0), -1)


def fine_tune_tfmot_qat(model, config, calibration, clock=None):
    """tfmot's QAT model (tf_keras) of `model`, its activation ranges
    calibrated on the `calibration` images, fine-tuned with a small constant
    learning rate on the next `qat_epochs` training sets."""
    from keras_shufflenet.quantization import quantize_model, tf_keras

    qat_model = quantize_model(model, representative_data=calibration, engine="tfmot")
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(config.qat_learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    callbacks = [clock.callback(tf_keras.callbacks.Callback)] if clock else []
    _fit_epochs(qat_model, config, config.epochs, config.qat_epochs, callbacks)
    return qat_model


def fine_tune_keras_qat(model, config, calibration, clock=None):
    """The Keras 3 QAT model of `model` (`engine="keras"`, on the current
    backend), calibrated and fine-tuned exactly as `fine_tune_tfmot_qat` does."""
    from keras_shufflenet.quantization import quantize_model

    qat_model = quantize_model(model, representative_data=calibration, engine="keras")
    return _fine_tune(qat_model, config, clock)


def fine_tune_float(model, config, clock=None):
    """A copy of the Keras 3 `model` fine-tuned exactly as the QAT models are."""
    import keras

    control = keras.models.clone_model(model)
    control.set_weights(model.get_weights())
    return _fine_tune(control, config, clock)


def _fine_tune(model, config, clock):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(config.qat_learning_rate),
                  loss="sparse_categorical_crossentropy")
    callbacks = [clock.callback(keras.callbacks.Callback)] if clock else []
    _fit_epochs(model, config, config.epochs, config.qat_epochs, callbacks)
    return model


def _on_backend(model, config, calibration, x_val, folder, log):
    """Runs `_backend_worker` in a Python process on `config.keras_backend`:
    Keras 3 QAT of `model` (with "keras" in `config.qat_engines`) and the float
    control (with `config.float_control`). Returns the worker's results; the
    QAT model comes back as `folder/keras_qat.keras`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "float.keras")
    np.save(folder / "calibration.npy", calibration)
    np.save(folder / "x_val.npy", x_val)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    env = {**os.environ, "KERAS_BACKEND": config.keras_backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "training.quantization_check", os.fspath(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if result.returncode:
        raise RuntimeError(
            f"The {config.keras_backend} worker failed (exit {result.returncode}):\n"
            f"{result.stderr[-4000:]}"
        )
    for line in result.stdout.splitlines():
        log(f"  [{config.keras_backend}] {line}")
    return json.loads((folder / "worker.json").read_text())


def _backend_worker(folder):
    """The Keras 3 part of `run`, on the backend of this process (see `_on_backend`)."""
    import keras

    from keras_shufflenet import layers  # noqa: F401  (registers the layers of its models)

    folder = Path(folder)
    fields = json.loads((folder / "config.json").read_text())
    config = Config(**{**fields, "qat_engines": tuple(fields["qat_engines"])})
    model = keras.saving.load_model(folder / "float.keras", compile=False)
    calibration = np.load(folder / "calibration.npy")
    x_val = np.load(folder / "x_val.npy")
    out = {"backend": keras.backend.backend(), "step_ms": {}, "predictions": {}, "seconds": {}}

    def train(name, fine_tune, *args):
        clock, start = _StepClock(), time.perf_counter()
        keras.utils.set_random_seed(config.seed + 2)
        trained = fine_tune(model, config, *args, clock=clock)
        out["seconds"][name] = round(time.perf_counter() - start, 2)
        out["step_ms"][name] = round(clock.median_ms(), 2)
        out["predictions"][name] = keras_predictions(trained, x_val).tolist()
        print(f"{name}: {out['seconds'][name]:.1f} s, {out['step_ms'][name]:.1f} ms/step",
              flush=True)
        return trained

    if "keras" in config.qat_engines:
        train("keras_qat", fine_tune_keras_qat, calibration).save(folder / "keras_qat.keras")
    if config.float_control:
        train("keras_float_fine_tuned", fine_tune_float)
    (folder / "worker.json").write_text(json.dumps(out))


def run(config=None, out_dir=None, log=None):
    """Runs the whole pipeline; returns a JSON-able dict of the results.

    Args:
        config: A `Config`. Defaults to `Config()`.
        out_dir: Folder for the `.tflite` and `.keras` files. Defaults to a
            temporary folder, deleted afterwards.
        log: A `print`-like function for progress, or `None`.

    Returns:
        A dict with `config`, `dataset`, `seconds` (per stage), `top1`
        (fractions, by `ROWS` key: those of the engines in `qat_engines`
        and of the float control, if run), `delta_points` (each minus
        `keras_float`, in percentage points), `ptq_loss_points` (float
        minus int8 PTQ), `recovered` (by engine: the fraction of PTQ's loss
        that int8 QAT wins back, `(qat - ptq) / (float - ptq)`; `None` when
        PTQ lost nothing), `agreement` (by engine: how often the int8 QAT
        file's top class is the QAT model's), `step_ms` (median training
        step of each trained model, by `ROWS` key), `backends`,
        `tflite_bytes` and `tflite_files`.
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

    seconds, top1, files, step_ms, agreement = {}, {}, {}, {}, {}
    backends = {"keras_float": keras.backend.backend(), "tfmot_qat": "tf_keras"}
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
    step_clock = _StepClock()
    loss = train_float(model, config, step_clock)
    step_ms["keras_float"] = round(step_clock.median_ms(), 2)
    lap("train_float")
    top1["keras_float"] = keras_top1(model, x_val, y_val)
    log(f"float top-1: {top1['keras_float']:.4f}")

    stem = f"{config.model}_{config.alpha:g}x_{config.classes}c_{config.image_size}px"
    files["tflite_float32"] = export_tflite(
        model, out_dir / f"{stem}_float32.tflite", "float32"
    )
    files["tflite_int8_ptq"] = export_tflite(
        model, out_dir / f"{stem}_int8_ptq.tflite", "int8", calibration
    )
    lap("export_float")

    def tflite_top1(path, labels=y_val):
        return runtime.tflite_top1(path, [(x_val, labels)], num_threads=1)

    top1["tflite_float32"] = tflite_top1(files["tflite_float32"])
    top1["tflite_int8_ptq"] = tflite_top1(files["tflite_int8_ptq"])
    log(f"int8 PTQ top-1: {top1['tflite_int8_ptq']:.4f}")
    lap("eval_tflite_float")

    def evaluate_qat(engine, qat_model, predictions):
        """top-1 of the QAT model and of its int8 file, and how often they agree."""
        top1[f"{engine}_qat"] = float(np.mean(predictions == y_val))
        path = files[f"tflite_int8_{engine}_qat"] = export_tflite(
            qat_model, out_dir / f"{stem}_int8_{engine}_qat.tflite", "int8",
            input_size=config.image_size,
        )
        top1[f"tflite_int8_{engine}_qat"] = tflite_top1(path)
        agreement[engine] = tflite_top1(path, predictions)
        log(f"{engine} QAT top-1: {top1[f'{engine}_qat']:.4f} (fake quant), "
            f"{top1[f'tflite_int8_{engine}_qat']:.4f} (int8 file)")

    if "tfmot" in config.qat_engines:
        keras.utils.set_random_seed(config.seed + 2)
        step_clock = _StepClock()
        qat_model = fine_tune_tfmot_qat(model, config, calibration, step_clock)
        step_ms["tfmot_qat"] = round(step_clock.median_ms(), 2)
        lap("train_tfmot_qat")
        evaluate_qat("tfmot", qat_model, keras_predictions(qat_model, x_val))
        lap("eval_tfmot_qat")
    if "keras" in config.qat_engines or config.float_control:
        worker = _on_backend(model, config, calibration, x_val, out_dir / "backend", log)
        lap(f"train_{config.keras_backend}")
        for name, ms in worker["step_ms"].items():
            step_ms[name] = ms
            backends[name] = worker["backend"]
        predictions = {name: np.asarray(p) for name, p in worker["predictions"].items()}
        if "keras" in config.qat_engines:
            import keras_shufflenet.quantization  # noqa: F401  (registers the QAT layers)

            qat_model = keras.saving.load_model(out_dir / "backend" / "keras_qat.keras",
                                                compile=False)
            evaluate_qat("keras", qat_model, predictions["keras_qat"])
            lap("eval_keras_qat")
        if config.float_control:
            top1["keras_float_fine_tuned"] = float(
                np.mean(predictions["keras_float_fine_tuned"] == y_val)
            )
    seconds["total"] = round(sum(seconds.values()), 2)

    float_top1, ptq_top1 = top1["keras_float"], top1["tflite_int8_ptq"]
    ptq_loss = float_top1 - ptq_top1
    result = {
        "model": config.model_name,
        "config": dataclasses.asdict(config),
        "dataset": {
            "generator": "training.synthetic.make_dataset",
            "classes": list(synthetic.class_names(config.num_classes, config.sizes)),
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
        "ptq_loss_points": round(ptq_loss * 100, 4),
        "recovered": {
            engine: round((top1[f"tflite_int8_{engine}_qat"] - ptq_top1) / ptq_loss, 4)
            if ptq_loss > 0 else None
            for engine in agreement
        },
        "agreement": agreement,
        "step_ms": step_ms,
        "backends": backends,
        "tflite_bytes": {name: os.path.getsize(path) for name, path in files.items()},
        "tflite_files": {name: os.fspath(path) for name, path in files.items()},
    }
    return result


ROWS = (
    ("keras_float", "Keras float32"),
    ("tflite_float32", "TFLite float32"),
    ("tflite_int8_ptq", "TFLite int8, post-training quantization"),
    ("tfmot_qat", "tfmot QAT (fake quant)"),
    ("tflite_int8_tfmot_qat", "TFLite int8, tfmot QAT"),
    ("keras_qat", "Keras 3 QAT (fake quant)"),
    ("tflite_int8_keras_qat", "TFLite int8, Keras 3 QAT"),
    ("keras_float_fine_tuned", "Keras float32, fine-tuned as QAT is (control)"),
)


def markdown_table(result):
    """The results of `run` as a markdown table."""
    config, seconds = result["config"], result["seconds"]
    trained = ", ".join(
        f"{seconds[key]:.0f} s {label}" for key, label in (
            ("train_tfmot_qat", "tfmot QAT"),
            (f"train_{config['keras_backend']}", f"{config['keras_backend']} QAT and control"),
        ) if key in seconds
    )
    lines = [
        f"{result['model']}, {len(result['dataset']['classes'])} synthetic classes "
        f"({config['num_classes']} shapes and textures x {config['sizes']} sizes), "
        f"{config['image_size']}x{config['image_size']}: {config['epochs']} epochs of "
        f"{config['train_images']} new training images ({seconds['train_float']:.0f} s) + "
        f"{config['qat_epochs']} fine-tuning epochs ({trained}), "
        f"{result['dataset']['val_images']} held-out images",
        "",
        "| model | trained on | held-out top-1 (%) | vs Keras float (points) "
        "| of PTQ's loss recovered | train step (ms) | size (KB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in ROWS:
        if key not in result["top1"]:
            continue
        value = result["top1"][key] * 100
        delta = "-" if key == "keras_float" else f"{result['delta_points'][key]:+.2f}"
        engine = key[len("tflite_int8_"):-len("_qat")] if key.endswith("_qat") else None
        recovered = result["recovered"].get(engine) if key.startswith("tflite_") else None
        recovered = "-" if recovered is None else f"{recovered:.0%}"
        backend = result["backends"].get(key, "-")
        ms = result["step_ms"].get(key)
        ms = "-" if ms is None else f"{ms:.0f}"
        size = result["tflite_bytes"].get(key)
        size = "-" if size is None else f"{size / 1024:.0f}"
        lines.append(f"| {label} | {backend} | {value:.2f} | {delta} | {recovered} | {ms} "
                     f"| {size} |")
    return "\n".join(lines)


__all__ = [
    "Config", "build_model", "markdown_table", "run", "train_split", "val_split",
]


if __name__ == "__main__":  # the worker of `_on_backend`
    _backend_worker(sys.argv[1])
