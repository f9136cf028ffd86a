"""Quantization-aware fine-tuning of a trained float ShuffleNet, then a full-int8 `.tflite`.

    python3 -m training.qat --model=v2 --alpha=1.0 --weights=runs/snv2/model.weights.h5 \
        --data=tfrecord --label_offset=1 --train_data='/data/imagenet/train-*' \
        --val_data='/data/imagenet/validation-*' --epochs=1 --out_dir=runs/snv2_qat

The float model (`--weights` with a `--num_classes` head, or `--keras_model`)
becomes a QAT model through `keras_shufflenet.quantization.quantize_model`
(fake quantization where the int8 file quantizes; `--qat_engine=keras`, the
default: a Keras 3 model, on any Keras backend; `--qat_engine=tfmot`: tf_keras +
tensorflow-model-optimization), is fine-tuned with SGD (momentum 0.9, small cosine-decayed
learning rate, label smoothing), evaluated, and exported with
`keras_shufflenet.export.export_tflite(qat_model, path, "int8", input_size=...)`
(every op integer, uint8 input and output). The int8 file is evaluated with the
LiteRT interpreter on `--tflite_eval_examples` validation images. Writes
`model_int8.tflite`, `summary.json` and (Keras engine) the QAT model
`model_qat.keras` in `--out_dir`.
"""

import os

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads (training.options imports it)
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from keras_shufflenet.quantization import ENGINES  # noqa: E402
from training import options  # noqa: E402

FLAGS = flags.FLAGS
options.define_model_flags(weights="imagenet")
options.define_data_flags()
flags.DEFINE_string("keras_model", None, "A saved float .keras model (instead of --weights).")
flags.DEFINE_string("out_dir", None, "Output folder (default: artifacts/training/qat).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("epochs", 1, "QAT epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: examples / batch).")
flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate (cosine decay to 0).")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_integer("calibration_images", 256, "Training images that set the activation "
                     "ranges before QAT, as post-training quantization would (0: a "
                     "[-6, 6] start).", lower_bound=0)
flags.DEFINE_enum("qat_engine", "keras", ENGINES, "keras: Keras 3 fake quantization "
                  "(any backend); tfmot: tf_keras and tensorflow-model-optimization.")
flags.DEFINE_integer("tflite_eval_examples", 1000, "Validation images for the int8 file "
                     "(batch 1, LiteRT; 0: skip).")
options.define_output_flags()


def _float_model(spec, weights):
    import keras

    from training import models

    if FLAGS.keras_model:
        model = keras.saving.load_model(FLAGS.keras_model)
        if model.get_layer(models.HEAD).get_config()["activation"] != "softmax":
            raise ValueError(
                "Expected a model with a softmax head. "
                f"Received: keras_model={FLAGS.keras_model!r}"
            )
        return model
    return models.build(spec, weights=weights, classes=FLAGS.num_classes,
                        image_size=FLAGS.image_size, logits=False)


def main(argv):
    del argv
    from keras_shufflenet import runtime
    from keras_shufflenet.export import export_tflite
    from training import checkpointing, data, quantization_aware

    quantization_aware.training_api(FLAGS.qat_engine).utils.set_random_seed(FLAGS.seed)
    spec, weights = options.spec(), options.weights()
    config = options.data_config(weights)
    train_data, steps = data.training_dataset(config, FLAGS.batch_size)
    steps = FLAGS.steps_per_epoch or steps
    val_data = (data.evaluation_dataset(config, FLAGS.batch_size)
                if options.has_validation() else None)

    qat_model = quantization_aware.fine_tune(
        _float_model(spec, weights), train_data, val_data, engine=FLAGS.qat_engine,
        epochs=FLAGS.epochs, steps=steps, learning_rate=FLAGS.learning_rate,
        label_smoothing=FLAGS.label_smoothing, progress=FLAGS.progress,
        calibration=quantization_aware.calibration_images(train_data, FLAGS.calibration_images),
    )

    out_dir = FLAGS.out_dir or options.default_out_dir("qat")
    os.makedirs(out_dir, exist_ok=True)
    path = export_tflite(qat_model, os.path.join(out_dir, "model_int8.tflite"), "int8",
                         input_size=FLAGS.image_size)
    summary = {"tflite": os.fspath(path), "tflite_bytes": path.stat().st_size,
               "qat_steps": FLAGS.epochs * steps, "qat_engine": FLAGS.qat_engine}
    if FLAGS.qat_engine == "keras":  # the QAT model itself, to train on or export again
        summary["keras_qat_model"] = os.path.join(out_dir, "model_qat.keras")
        qat_model.save(summary["keras_qat_model"])
    if val_data is not None:
        summary["val_top1_qat"] = float(qat_model.evaluate(val_data, verbose=0,
                                                           return_dict=True)["top1"])
        if FLAGS.tflite_eval_examples:
            summary["val_top1_int8_tflite"] = runtime.tflite_top1(
                path, val_data, limit=FLAGS.tflite_eval_examples, num_threads=os.cpu_count())
        print(f"validation top-1: QAT model {summary['val_top1_qat']:.4f}, int8 .tflite "
              f"{summary.get('val_top1_int8_tflite', float('nan')):.4f}", flush=True)
    checkpointing.write_json(os.path.join(out_dir, "summary.json"), summary)
    print(f"wrote {path} ({summary['tflite_bytes'] / 2**20:.2f} MB, full int8)", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
