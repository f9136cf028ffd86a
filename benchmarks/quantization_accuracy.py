"""int8 accuracy of a trained ShuffleNet: float vs post-training quantization vs QAT.

Trains a small ShuffleNet from scratch on the procedural shapes-and-textures
dataset of `training.synthetic`, by default a task where full-int8
post-training quantization (PTQ) costs accuracy: ShuffleNetV1 g3 0.25x,
32x32 images, 24 classes (8 shapes and textures x 3 sizes). Then measures
held-out top-1 of the float Keras model, its float32 TFLite model, its
full-int8 PTQ TFLite model (200 calibration images from the train split)
and, after quantization-aware fine-tuning with each engine of
`keras_shufflenet.quantization.quantize_model` (tfmot on tf_keras; Keras 3
on JAX, in a subprocess), each QAT model and its full-int8 TFLite file,
with each model's training step time, and a float control fine-tuned as QAT
is. The pipeline is `training.quantization_check`. Prints a markdown table
and writes it, with the raw numbers, under artifacts/benchmarks/. Exits 1
unless PTQ loses at least `PTQ_MIN_LOSS` points and every QAT engine wins
back at least `QAT_MIN_RECOVERED` of it.

    python3 -m benchmarks.quantization_accuracy              # about 6 minutes on 2 cores
    python3 -m benchmarks.quantization_accuracy --model v2 --alpha 0.5 --sizes 1 \
        --image-size 64 --epochs 12 --no-goals           # the easy task: int8 loses nothing
"""

import argparse
import json
import sys
from pathlib import Path

from keras_shufflenet import logs, options

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

ROOT = Path(__file__).resolve().parents[1]

from training.quantization_check import MODELS, QAT_ENGINES, Config, markdown_table, run

OUT = ROOT / "artifacts" / "benchmarks"
PTQ_MIN_LOSS = 1.0  # top-1 points PTQ must lose for the task to show anything
QAT_MIN_RECOVERED = 0.5  # fraction of that loss each int8 QAT model must win back


def parse_args(argv=None):
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_arguments(parser, (options.VERBOSE,))
    parser.add_argument("--model", choices=MODELS, default=defaults.model)
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="width")
    parser.add_argument("--classes", type=int, default=defaults.num_classes,
                        help="shapes and textures (of 8)")
    parser.add_argument("--sizes", type=int, default=defaults.sizes,
                        help="size classes of each shape or texture")
    parser.add_argument("--image-size", type=int, default=defaults.image_size)
    parser.add_argument("--train-images", type=int, default=defaults.train_images,
                        help="new training images per epoch")
    parser.add_argument("--val-images", type=int, default=defaults.val_images)
    parser.add_argument("--calibration-images", type=int, default=defaults.calibration_images)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--qat-epochs", type=int, default=defaults.qat_epochs)
    parser.add_argument("--qat-lr", type=float, default=defaults.qat_learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--engines", nargs="+", choices=QAT_ENGINES,
                        default=list(defaults.qat_engines), help="QAT engines to fine-tune")
    parser.add_argument("--keras-backend", choices=("jax", "torch", "tensorflow"),
                        default=defaults.keras_backend,
                        help="backend of the Keras 3 QAT model and the control")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip fine-tuning the float model as QAT is (the control)")
    parser.add_argument("--no-goals", dest="goals", action="store_false",
                        help="exit 0 whatever PTQ loses and QAT wins back")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the results")
    return parser.parse_args(argv)


def check_goals(result):
    """Whether PTQ loses at least `PTQ_MIN_LOSS` points and each QAT engine
    wins back at least `QAT_MIN_RECOVERED` of that: a dict for the results."""
    ptq_met = result["ptq_loss_points"] >= PTQ_MIN_LOSS
    return {
        "ptq_min_loss_points": PTQ_MIN_LOSS,
        "qat_min_recovered": QAT_MIN_RECOVERED,
        "ptq_met": ptq_met,
        "qat_met": {
            engine: ptq_met and recovered >= QAT_MIN_RECOVERED
            for engine, recovered in result["recovered"].items()
        },
    }


def main(argv=None):
    args = parse_args(argv)
    config = Config(
        model=args.model, alpha=args.alpha, num_classes=args.classes, sizes=args.sizes,
        image_size=args.image_size, train_images=args.train_images, val_images=args.val_images,
        calibration_images=args.calibration_images, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, qat_epochs=args.qat_epochs,
        qat_learning_rate=args.qat_lr, seed=args.seed, float_control=args.control,
        qat_engines=tuple(args.engines), keras_backend=args.keras_backend,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(config, args.out / "quantization_accuracy",
                 log=lambda message: print(message, file=sys.stderr, flush=True))
    result["goals"] = goals = check_goals(result)
    table = markdown_table(result)
    print(table)
    print(f"\nPTQ int8 loses {result['ptq_loss_points']:.2f} points "
          f"(goal: at least {PTQ_MIN_LOSS:g})")
    for engine, recovered in result["recovered"].items():
        won = "-" if recovered is None else f"{recovered:.0%}"
        print(f"{engine} QAT int8 wins back {won} of it (goal: at least "
              f"{QAT_MIN_RECOVERED:.0%}); its int8 file agrees with the QAT model on "
              f"{result['agreement'][engine]:.1%} of the images")
    if "keras_float_fine_tuned" in result["top1"]:
        print(f"The float model fine-tuned as QAT is: "
              f"{result['delta_points']['keras_float_fine_tuned']:+.2f} points")
    stem = f"quantization_accuracy_{args.model}_{args.alpha:g}x_{config.classes}c"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(table + "\n")
    met = goals["ptq_met"] and all(goals["qat_met"].values())
    return 0 if met or not args.goals else 1


if __name__ == "__main__":
    sys.exit(main())
