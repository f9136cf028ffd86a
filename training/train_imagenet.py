"""Train a ShuffleNet on ImageNet (or any labelled images) with the papers' recipe.

    python3 -m training.train_imagenet --data=tfrecord --label_offset=1 \
        --train_data='/data/imagenet/train-*' --val_data='/data/imagenet/validation-*' \
        --model=v2 --alpha=1.0 --batch_size=1024 --strategy=mirrored --out_dir=runs/snv2

Defaults are the recipe of both papers (see `training/recipe.py` for the
sources: the papers and Megvii's reference code): SGD momentum 0.9,
learning rate 0.5 x batch / 1024 decaying linearly to 0 per step, L2 weight
decay 4e-5 on conv/dense kernels, label smoothing 0.1, 240 epochs,
random-resized-crop 224 + colour jitter 0.4 + flip (`--optimizer=adam` for
short runs on small data). The run directory holds
`backup/` (resumed from automatically: run the same command again after a
crash), `checkpoints/` (every epoch), `logs/` (TensorBoard), and at the end
`model.keras`, `model.weights.h5` (after BatchNorm recalibration) and
`summary.json`.
"""

import os
import sys

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads (training.options imports it)
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from training import options  # noqa: E402

FLAGS = flags.FLAGS
options.define_model_flags(weights="none")
options.define_data_flags()
flags.DEFINE_string("out_dir", None, "Run directory (default: artifacts/training/train_imagenet).")
flags.DEFINE_integer("batch_size", 1024, "Global batch size.")
flags.DEFINE_integer("epochs", 240, "Epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: examples / batch).")
flags.DEFINE_float("base_lr", 0.5, "Learning rate at batch 1024 (scaled with --batch_size).")
flags.DEFINE_enum("schedule", "linear", ["linear", "cosine", "constant"], "Per-step decay.")
flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up epochs.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum (Adam's beta_1).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "sgd: the papers'; adam: faster on "
                  "short runs.")
flags.DEFINE_float("weight_decay", 4e-5, "L2 decay of conv/dense kernels (PyTorch-style, coupled).")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_float("ema_decay", 0.0, "EMA of the weights (e.g. 0.9999); 0: off.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "float16", "bfloat16"], "Mixed precision.")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"],
                  "XLA for the train step (auto: on GPUs and TPUs, not on CPUs).")
flags.DEFINE_integer("bn_recalibration_steps", 200, "Batches for the final BatchNorm "
                     "recalibration (0: skip).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy (multi_worker reads TF_CONFIG).")
flags.DEFINE_list("devices", None, "Devices for --strategy=mirrored (default: all GPUs).")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices "
                     "(for mirrored on CPU).")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
options.define_output_flags()


def _recipe():
    from training import recipe

    return recipe.Recipe(
        base_learning_rate=FLAGS.base_lr,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        schedule=FLAGS.schedule,
        warmup_epochs=FLAGS.warmup_epochs,
        momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
        ema_decay=FLAGS.ema_decay,
        optimizer=FLAGS.optimizer,
    )


def _callbacks(run_dir, steps_per_epoch, validate):
    import keras

    from keras_shufflenet import distribute
    from training import tensorboard_logs

    monitor = "val_top1" if validate else "top1"
    return [
        distribute.ResumableBackup(os.path.join(run_dir, "backup"), steps_per_epoch),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "checkpoints", "last.weights.h5"), save_weights_only=True
        ),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "checkpoints", "best.weights.h5"),
            save_weights_only=True, save_best_only=True, monitor=monitor, mode="max",
        ),
        tensorboard_logs.callback(os.path.join(run_dir, "logs")),
    ]


def main(argv):
    del argv
    from training import strategies

    devices = FLAGS.devices
    if FLAGS.cpu_devices:
        devices = devices or strategies.split_cpu(FLAGS.cpu_devices)
    try:
        strategy = strategies.make_strategy(FLAGS.strategy, devices=devices, tpu=FLAGS.tpu)
    except ValueError as error:  # e.g. --strategy=tpu where no TPU is found
        print(f"error: {error}", file=sys.stderr)
        return 2

    import keras

    from keras_shufflenet import distribute
    from training import bn_recalibration, checkpointing, data, models, recipe

    task_type, task_id, is_chief = strategies.task(strategy)
    out_dir = FLAGS.out_dir or options.default_out_dir("train_imagenet")
    # Non-chief workers keep their own backups and logs (same state, no races).
    run_dir = out_dir if is_chief else os.path.join(out_dir, "workers", f"{task_type}_{task_id}")
    os.makedirs(run_dir, exist_ok=True)
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.mixed_precision != "none":
        keras.config.set_dtype_policy(f"mixed_{FLAGS.mixed_precision}")

    spec, weights = options.spec(), options.weights()
    config = options.data_config(weights)
    train_data, steps = data.training_dataset(config, FLAGS.batch_size)
    steps = FLAGS.steps_per_epoch or steps
    validate = options.has_validation()
    val_data = data.evaluation_dataset(config, FLAGS.batch_size) if validate else None
    training_recipe = _recipe()
    print(
        f"{strategy.num_replicas_in_sync} replica(s), global batch {FLAGS.batch_size}, "
        f"{steps} steps/epoch, peak lr {training_recipe.learning_rate:g}, run dir {run_dir}",
        flush=True,
    )
    with strategy.scope():
        model = models.build(
            spec, weights=weights, classes=FLAGS.num_classes, image_size=FLAGS.image_size
        )
        jit = {"auto": "auto", "true": True, "false": False}[FLAGS.jit_compile]
        recipe.compile_model(model, training_recipe, steps, FLAGS.num_classes, jit_compile=jit)
        if FLAGS.strategy == "multi_worker":
            distribute.build_before_fit(
                model, (FLAGS.image_size, FLAGS.image_size, 3), FLAGS.num_classes
            )
    callbacks = _callbacks(run_dir, steps, validate)
    model.fit(
        train_data,
        epochs=FLAGS.epochs,
        steps_per_epoch=steps,
        validation_data=val_data,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself (Keras warns that it ignores True)
        verbose=FLAGS.progress if is_chief else 0,
    )
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))

    final = models.float32_copy(model, spec, FLAGS.num_classes, FLAGS.image_size)
    recalibrated = 0
    if FLAGS.bn_recalibration_steps:
        print("BatchNorm recalibration", flush=True)
        recalibrated = bn_recalibration.recalibrate(
            final,
            data.calibration_dataset(config, FLAGS.batch_size, FLAGS.bn_recalibration_steps),
            FLAGS.bn_recalibration_steps,
            verbose=1 if is_chief and FLAGS.progress == 1 else 0,
        )
    paths = models.save(final, run_dir)
    summary = {
        "optimizer_iterations": iterations,
        "epochs": FLAGS.epochs,
        "steps_per_epoch": steps,
        "global_batch": FLAGS.batch_size,
        "replicas": strategy.num_replicas_in_sync,
        "restored_step": callbacks[0].restored_step,
        "bn_recalibration_batches": recalibrated,
        "files": paths,
    }
    if validate:
        summary["val"] = models.evaluate(final, val_data, FLAGS.num_classes)
        top5 = summary["val"].get("top5")
        print(
            f"validation top-1 {summary['val']['top1']:.4f}"
            + ("" if top5 is None else f", top-5 {top5:.4f}"),
            flush=True,
        )
    checkpointing.write_json(os.path.join(run_dir, "summary.json"), summary)
    print(f"wrote {paths['keras']} and {paths['weights']}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
