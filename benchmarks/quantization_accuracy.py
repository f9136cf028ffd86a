"""int8 accuracy of a trained ShuffleNet: float vs post-training quantization vs QAT.

Trains ShuffleNetV2 0.5x (or `--model v1`: ShuffleNetV1 g3 0.5x) from scratch
on the procedural shapes-and-textures dataset of `training.synthetic`, then
measures held-out top-1 of the float Keras model, its float32 TFLite model,
its full-int8 post-training-quantized TFLite model (200 calibration images
from the train split) and, after quantization-aware fine-tuning with
`keras_shufflenet.quantization.quantize_model`, its full-int8 QAT TFLite
model. The pipeline is `training.quantization_check`. Prints a markdown
table and writes it, with the raw numbers, under artifacts/benchmarks/.

    python3 -m benchmarks.quantization_accuracy              # about 4 minutes on 2 cores
    python3 -m benchmarks.quantization_accuracy --model v1
"""

import argparse
import json
import sys
from pathlib import Path

from keras_shufflenet import logs, options

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

ROOT = Path(__file__).resolve().parents[1]

from training.quantization_check import MODELS, Config, markdown_table, run

OUT = ROOT / "artifacts" / "benchmarks"
PTQ_TOLERANCE = 2.0  # most top-1 points full-int8 PTQ may lose (the goal)
QAT_TOLERANCE = 1.0  # most top-1 points int8 QAT may lose


def parse_args(argv=None):
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_arguments(parser, (options.VERBOSE,))
    parser.add_argument("--model", choices=MODELS, default=defaults.model)
    parser.add_argument("--classes", type=int, default=defaults.num_classes)
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
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip fine-tuning the float model as QAT is (the control)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the results")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    config = Config(
        model=args.model, num_classes=args.classes, image_size=args.image_size,
        train_images=args.train_images, val_images=args.val_images,
        calibration_images=args.calibration_images, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, qat_epochs=args.qat_epochs,
        qat_learning_rate=args.qat_lr, seed=args.seed, float_control=args.control,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(config, args.out / "quantization_accuracy",
                 log=lambda message: print(message, file=sys.stderr, flush=True))
    delta = result["delta_points"]
    result["goals"] = {
        "ptq_within_points": PTQ_TOLERANCE,
        "qat_within_points": QAT_TOLERANCE,
        # A loss of at most so many points (a gain is no failure).
        "ptq_met": delta["tflite_int8_ptq"] >= -PTQ_TOLERANCE,
        "qat_met": delta["tflite_int8_qat"] >= -QAT_TOLERANCE,
    }
    table = markdown_table(result)
    print(table)
    print(
        f"\nPTQ int8 {delta['tflite_int8_ptq']:+.2f} points (goal: lose at most {PTQ_TOLERANCE:g}), "
        f"QAT int8 {delta['tflite_int8_qat']:+.2f} points (goal: lose at most {QAT_TOLERANCE:g})"
    )
    if "qat_vs_float_control_points" in result:
        print(f"QAT int8 vs the float model fine-tuned alike: "
              f"{result['qat_vs_float_control_points']:+.2f} points")
    stem = f"quantization_accuracy_{args.model}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(table + "\n")
    return 0 if result["goals"]["ptq_met"] and result["goals"]["qat_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
