"""Fine-tune a ShuffleNet from ImageNet (or any) weights to a new folder dataset.

    python3 -m training.finetune --model=v2 --alpha=1.0 --weights=imagenet \
        --train_data=flowers/train --val_data=flowers/val --num_classes=5 \
        --out_dir=runs/flowers

Two phases: the backbone frozen (BatchNorm in inference mode) while a new
`predictions` head learns (`--head_epochs`, `--head_lr`), then everything
unfrozen with a lower learning rate decaying to 0 (`--finetune_epochs`,
`--finetune_lr`, cosine). SGD with momentum 0.9, label smoothing 0.1 and
L2 decay 4e-5 on kernels, as in `training.recipe`. Reports the validation
accuracy after each phase and saves `model.keras`, `model.weights.h5`,
`summary.json` and, for a folder dataset, the class names (the sorted
sub-folder names, the order the model learnt them in) as `model.labels.txt`
in `--out_dir`; `keras-shufflenet evaluate`, `export` and `predict
--keras-model` read them from there. `--weights` is a file of the same
architecture with a `--source_classes` head (1000 for ImageNet weights).
`--qat_epochs=N` adds a third phase: quantization-aware training
(`--qat_engine=keras`, the default, or `tfmot`) from the fine-tuned model,
then a full-int8 `model_int8.tflite` with the ranges it learnt.
"""

import os
import sys

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads (training.options imports it)
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from keras_shufflenet.quantization import ENGINES  # noqa: E402
from training import options  # noqa: E402

FLAGS = flags.FLAGS
options.define_model_flags(weights="imagenet")
options.define_data_flags()
FLAGS.set_default("data", "folder")
flags.DEFINE_integer("source_classes", 1000, "Classes of the head of the --weights file.")
flags.DEFINE_string("out_dir", None, "Output folder (default: artifacts/training/finetune).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("head_epochs", 3, "Epochs with the backbone frozen.")
flags.DEFINE_float("head_lr", 0.05, "Learning rate of the frozen phase (constant).")
flags.DEFINE_integer("finetune_epochs", 5, "Epochs with everything trainable.")
flags.DEFINE_float("finetune_lr", 0.005, "Peak learning rate of the unfrozen phase (cosine).")
flags.DEFINE_float("weight_decay", 4e-5, "L2 decay of conv/dense kernels.")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_integer("qat_epochs", 0, "Epochs of quantization-aware training after phase 2, "
                     "then a full-int8 model_int8.tflite (0: none).", lower_bound=0)
flags.DEFINE_enum("qat_engine", "keras", ENGINES, "QAT with keras: Keras 3 fake quantization "
                  "(any backend); tfmot: tf_keras and tensorflow-model-optimization.")
flags.DEFINE_float("qat_lr", 1e-3, "Peak learning rate of QAT (cosine).")
flags.DEFINE_integer("calibration_images", 256, "Training images that set the ranges before "
                     "QAT, as post-training quantization would.", lower_bound=0)
options.define_output_flags()


def _phase(model, learning_rate, epochs, schedule, steps, train_data, val_data):
    """Compiles `model` for one phase and trains it; returns validation top-1."""
    from training import recipe

    phase = recipe.Recipe(
        base_learning_rate=learning_rate * recipe.REFERENCE_BATCH / FLAGS.batch_size,
        batch_size=FLAGS.batch_size,
        epochs=epochs,
        schedule=schedule,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
    )
    recipe.compile_model(model, phase, steps, FLAGS.num_classes)
    history = model.fit(
        train_data, epochs=epochs, steps_per_epoch=steps, validation_data=val_data,
        shuffle=False,  # the dataset shuffles itself (Keras warns that it ignores True)
        verbose=FLAGS.progress,
    )
    return float(history.history["val_top1"][-1])


def main(argv):
    del argv
    import keras

    from training import checkpointing, data, models

    if FLAGS.data != "synthetic" and not options.has_validation():
        print("error: --val_data is required (a folder of the same class sub-folders)",
              file=sys.stderr)
        return 2
    keras.utils.set_random_seed(FLAGS.seed)
    spec, weights = options.spec(), options.weights()
    config = options.data_config(weights)
    train_data, steps = data.training_dataset(config, FLAGS.batch_size)
    val_data = data.evaluation_dataset(config, FLAGS.batch_size)

    source = models.build(spec, weights=weights, classes=FLAGS.source_classes,
                          image_size=FLAGS.image_size, logits=False)
    model = models.build(spec, classes=FLAGS.num_classes, image_size=FLAGS.image_size)
    models.transfer_weights(source, model)
    del source

    for layer in model.layers:
        layer.trainable = layer.name == models.HEAD
    print(f"Phase 1: new head, backbone frozen ({FLAGS.head_epochs} epochs)", flush=True)
    head_top1 = _phase(model, FLAGS.head_lr, FLAGS.head_epochs, "constant", steps,
                       train_data, val_data) if FLAGS.head_epochs else None
    for layer in model.layers:
        layer.trainable = True
    print(f"Phase 2: everything trainable ({FLAGS.finetune_epochs} epochs)", flush=True)
    top1 = _phase(model, FLAGS.finetune_lr, FLAGS.finetune_epochs, "cosine", steps,
                  train_data, val_data) if FLAGS.finetune_epochs else head_top1

    out_dir = FLAGS.out_dir or options.default_out_dir("finetune")
    final = models.float32_copy(model, spec, FLAGS.num_classes, FLAGS.image_size)
    class_names = data.list_folder(config.train)[2] if config.source == "folder" else None
    paths = models.save(final, out_dir, class_names=class_names)
    val = models.evaluate(final, val_data, FLAGS.num_classes)
    summary = {"val_top1_frozen": head_top1, "val_top1_last_epoch": top1, "val": val,
               "files": paths}
    checkpointing.write_json(os.path.join(out_dir, "summary.json"), summary)
    print(f"validation top-1 {val['top1']:.4f} (after the frozen phase: "
          f"{head_top1 if head_top1 is None else round(head_top1, 4)})", flush=True)
    print(f"wrote {paths['keras']} and {paths['weights']}", flush=True)
    if FLAGS.qat_epochs:
        summary.update(_quantization_aware_phase(final, train_data, val_data, steps, out_dir,
                                                 class_names))
        checkpointing.write_json(os.path.join(out_dir, "summary.json"), summary)
    return 0


def _quantization_aware_phase(model, train_data, val_data, steps, out_dir, class_names):
    """Phase 3 (`--qat_epochs`): QAT of the fine-tuned `model`, then its
    full-int8 `model_int8.tflite`; returns what the summary adds."""
    from keras_shufflenet.export import export_tflite
    from training import quantization_aware

    print(f"Phase 3: quantization-aware training ({FLAGS.qat_epochs} epochs, "
          f"{FLAGS.qat_engine})", flush=True)
    qat_model = quantization_aware.fine_tune(
        model, train_data, val_data, engine=FLAGS.qat_engine, epochs=FLAGS.qat_epochs,
        steps=steps, learning_rate=FLAGS.qat_lr, label_smoothing=FLAGS.label_smoothing,
        progress=FLAGS.progress,
        calibration=quantization_aware.calibration_images(train_data, FLAGS.calibration_images),
    )
    top1 = float(qat_model.evaluate(val_data, verbose=0, return_dict=True)["top1"])
    path = export_tflite(qat_model, os.path.join(out_dir, "model_int8.tflite"), "int8",
                         input_size=FLAGS.image_size, labels=class_names)
    print(f"validation top-1 after QAT {top1:.4f}; wrote {path} (full int8)", flush=True)
    return {"val_top1_qat": top1, "qat_engine": FLAGS.qat_engine, "tflite": os.fspath(path)}


if __name__ == "__main__":
    app.run(main)
