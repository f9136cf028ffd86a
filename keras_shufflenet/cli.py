"""The `keras-shufflenet` command: classify, list, export, convert weights,
benchmark, evaluate."""

import argparse
import os
import sys
import traceback
from pathlib import Path

from keras_shufflenet import files
from keras_shufflenet.zoo import VERSIONS, weights_argument

INFO_FORMAT = "{:<22} {:>11} {:>10} {:>7} {:>12}"
EXPORT_SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}
CHECKPOINT_SUFFIXES = (".pth", ".pt")

EXAMPLES = r"""examples:
  keras-shufflenet predict cat.jpg dog.png
  keras-shufflenet predict cat.jpg --model v2 --alpha 2.0 --top 3
  keras-shufflenet predict cat.jpg --model v1 --groups 8 --alpha 1.0
  keras-shufflenet predict cat.jpg --weights my_model.weights.h5
  keras-shufflenet info --model v2
  keras-shufflenet export --model shufflenetv2 --alpha 1.0 --quantization int8 \
      --calibration-dir photos/ --output snv2.tflite
  keras-shufflenet export --model v1 --groups 3 --quantization float16 --output snv1_fp16.tflite
  keras-shufflenet export --format onnx --model v2 --alpha 1.0 --output snv2.onnx
  keras-shufflenet export --format onnx --opset 18 --input-size 224 --output snv2_224.onnx
  keras-shufflenet export --format keras --model v1 --groups 8 --output snv1_g8.keras
  keras-shufflenet convert-weights shufflenetv2_x1-5666bf0f80.pth --model v2 --alpha 1.0 \
      --output shufflenet_v2_1x.weights.h5
  keras-shufflenet convert-weights finetuned.pth --model v2 --alpha 0.5 --classes 10 \
      --output finetuned.weights.h5
  keras-shufflenet convert-weights shufflenet_g3_w1-1348-ce54f64e.pth --model v1 --groups 3 \
      --no-top --output shufflenet_v1_g3_notop.weights.h5
  keras-shufflenet benchmark snv2_int8.tflite snv2_fp32.tflite --threads 1 4
  keras-shufflenet benchmark snv2_int8.tflite --adb \
      --benchmark-binary android_aarch64_benchmark_model --gpu
  keras-shufflenet evaluate snv2_int8.tflite --images val_subset/ --alpha 1.0
  keras-shufflenet evaluate snv2_int8.tflite --images photos/ --keras-model my.keras
  keras-shufflenet --verbose predict cat.jpg   # tracebacks on errors

exit codes:
  0  success
  2  bad input or usage: arguments, missing or unreadable files, a checkpoint
     that is refused or does not match the model, a model the converter cannot take
  1  unexpected failure, such as a missing optional package (rerun with --verbose)
Errors print one "error: ..." line on stderr; a failed command writes no output file.
"""


def predict(args):
    """Prints the top-k ImageNet classes of each image."""
    from keras_shufflenet import builder, imagenet, images, zoo

    if not 1 <= args.top <= imagenet.NUM_CLASSES:
        raise ValueError(f"--top must be in [1, 1000]. Received: --top={args.top}")
    spec = zoo.spec_for(args.model, args.alpha, args.groups)
    resize, crop = zoo.eval_size(spec, args.weights)
    batch = images.load_images(args.images, resize, crop)  # fails before the build
    model = builder.build_model(spec, weights=args.weights)
    preds = model.predict(batch.astype("float32"), verbose=0)
    for path, top in zip(args.images, imagenet.decode_predictions(preds, top=args.top)):
        print(path)
        for rank, (wnid, name, score) in enumerate(top, 1):
            print(f"  {rank}. {name} ({wnid})  {score * 100:.2f}%")


def _all_specs(model):
    from keras_shufflenet import specs

    v2 = [specs.v2_spec(alpha) for alpha in specs.V2_CHANNELS]
    v1 = [specs.v1_spec(g, a) for g in specs.V1_CHANNELS for a in specs.V1_ALPHAS]
    return {"v1": v1, "v2": v2, "all": v2 + v1}[model]


def _info_row(spec):
    import keras

    from keras_shufflenet import builder, complexity
    from keras_shufflenet import weights as weights_lib

    keras.backend.clear_session()
    model = builder.build_model(spec, weights=None, input_shape=(224, 224, 3))
    top1 = size = "-"
    try:
        entry = weights_lib.get_entry(spec)
        top1, size = f"{entry.top1:.2f}", f"{entry.resize}/{entry.crop}"
    except ValueError:
        pass
    macs = complexity.count_macs(model) / 1e6
    return (
        builder.default_name(spec),
        f"{complexity.count_params(model):,}",
        f"{macs:.1f}",
        top1,
        size,
    )


def info(args):
    """Prints params, MACs and published accuracy of every variant."""
    print(INFO_FORMAT.format("model", "params", "MACs (M)", "top-1", "resize/crop"))
    for spec in _all_specs(args.model):
        print(INFO_FORMAT.format(*_info_row(spec)), flush=True)


def benchmark(args):
    """Prints a latency table of `.tflite` models (LiteRT here, or a phone over adb)."""
    import json

    from keras_shufflenet import benchmarking

    if args.adb and not args.benchmark_binary:
        raise ValueError(
            "--adb needs --benchmark-binary, the TFLite benchmark_model built for "
            "the phone. Received: --benchmark-binary=None"
        )
    if not args.adb:
        phone_only = [
            flag
            for flag, used in (
                ("--benchmark-binary", args.benchmark_binary),
                ("--serial", args.serial),
                ("--gpu", args.gpu),
                ("--nnapi", args.nnapi),
                ("--no-xnnpack", not args.xnnpack),
                ("--op-profiling", args.op_profiling),
            )
            if used
        ]
        if phone_only:
            raise ValueError(
                f"{', '.join(phone_only)} only apply with --adb. "
                f"Received: {' '.join(phone_only)}"
            )
    for model in args.models:  # all missing files before any measurement
        if not os.path.isfile(model):
            raise FileNotFoundError(
                f"No .tflite model exists at that path. Received: {model}"
            )
    results = []
    for model in args.models:
        for threads in args.threads:
            common = {
                "num_threads": threads,
                "num_runs": args.runs,
                "warmup_runs": args.warmup,
            }
            if args.adb:
                result = benchmarking.benchmark_adb(
                    model,
                    args.benchmark_binary,
                    use_xnnpack=args.xnnpack,
                    use_gpu=args.gpu,
                    use_nnapi=args.nnapi,
                    op_profiling=args.op_profiling,
                    serial=args.serial,
                    **common,
                )
            else:
                result = benchmarking.benchmark_local(model, **common)
            results.append(result)
    print(benchmarking.format_table(results))
    for result in results:
        if result.op_profile:
            print(f"\n{result.model} ({result.threads} threads):\n{result.op_profile}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump([r.to_dict() for r in results], f, indent=2)


def evaluate(args):
    """Prints how a `.tflite` model agrees with its Keras model on images."""
    from keras_shufflenet import evaluation, zoo

    model, resize, crop = zoo.load(args.model, args.alpha, args.groups, args.weights, args.keras_model)
    if args.crop and not args.resize:  # keep the resize/crop ratio (256/224)
        resize = int(args.crop * resize / crop)
    resize, crop = args.resize or resize, args.crop or crop
    result = evaluation.evaluate_tflite(
        args.tflite, model, args.images, resize=resize, crop=crop, limit=args.limit
    )
    print(result.summary())


def _check_output(path, suffix, flag="--output"):
    """Fails early, before any model is built, on an output that cannot be written."""
    if not path.endswith(suffix):
        raise ValueError(f"{flag} must name a {suffix} file. Received: {flag}={path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"The folder of {flag} does not exist. Received: {flag}={path}")


def _check_export_arguments(args):
    _check_output(args.output, EXPORT_SUFFIXES[args.format])
    tflite_only = [
        flag
        for flag, value in (
            ("--quantization", args.quantization),
            ("--calibration-dir", args.calibration_dir),
            ("--io-dtype", args.io_dtype),
        )
        if value is not None
    ]
    if args.format != "tflite" and tflite_only:
        raise ValueError(
            f"{', '.join(tflite_only)} only apply to --format tflite. Received: --format={args.format}"
        )
    if args.opset is not None and args.format != "onnx":
        raise ValueError(f"--opset only applies to --format onnx. Received: --format={args.format}")
    if args.format == "onnx":
        from keras_shufflenet import onnx_export

        if args.opset is not None and args.opset not in onnx_export.OPSETS:
            raise ValueError(
                f"--opset must be from {onnx_export.OPSETS.start} to "
                f"{onnx_export.OPSETS.stop - 1}. Received: --opset={args.opset}"
            )
        onnx_export.check_converters()  # a missing package fails before the build
    if args.input_size is not None and args.format == "keras":
        raise ValueError(
            "--input-size does not apply to --format keras (the saved model keeps its input "
            f"shape). Received: --input-size={args.input_size}"
        )
    if args.format == "tflite":
        args.quantization = args.quantization or "int8"
        args.io_dtype = args.io_dtype or "int8"
        if args.quantization == "int8" and not args.calibration_dir:
            raise ValueError(
                "int8 export needs --calibration-dir, a folder of representative images. "
                "Received: --calibration-dir=None"
            )


def _save_atomically(path, save):
    """Runs `save(tmp)` on a temporary path next to `path`, then moves it there."""
    with files.atomic_output(path) as staged:
        save(str(staged))
    return Path(path)


def _megabytes(path):
    return f"{path.stat().st_size / 2**20:.2f} MB"


def export(args):
    """Writes a `.tflite` (int8 calibrated on a folder of images), `.onnx` or `.keras` model."""
    from keras_shufflenet import zoo

    _check_export_arguments(args)
    model, resize, crop = zoo.load(args.model, args.alpha, args.groups, args.weights, args.keras_model)
    if args.format == "keras":
        path = _save_atomically(args.output, model.save)
        print(f"wrote {path} ({_megabytes(path)}, keras)")
        return
    if args.format == "onnx":
        from keras_shufflenet.onnx_export import DEFAULT_OPSET, export_onnx

        opset = DEFAULT_OPSET if args.opset is None else args.opset
        path = export_onnx(model, args.output, opset, input_size=args.input_size, progress=True)
        print(f"wrote {path} ({_megabytes(path)}, onnx opset {opset})")
        return
    from keras_shufflenet.export import export_tflite

    size = args.input_size or crop
    path = export_tflite(
        model,
        args.output,
        args.quantization,
        args.calibration_dir,
        io_dtype=args.io_dtype,
        input_size=size,
        resize=int(size * resize / crop),
        crop=size,
        progress=True,
    )
    print(f"wrote {path} ({_megabytes(path)}, {args.quantization})")


def convert_weights(args):
    """Converts a reference torch checkpoint to a Keras `.weights.h5` file."""
    from keras_shufflenet import builder, zoo
    from keras_shufflenet.export import StderrProgbar

    checkpoint = args.checkpoint
    if not checkpoint.endswith(CHECKPOINT_SUFFIXES) or not os.path.isfile(checkpoint):
        raise ValueError(
            f"Expected an existing torch checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}). "
            f"Received: CHECKPOINT={checkpoint}"
        )
    _check_output(args.output, ".weights.h5")
    spec = zoo.spec_for(args.model, args.alpha, args.groups)
    bar = StderrProgbar(2, "step")  # read and convert, then save
    model = builder.build_model(
        spec, weights=checkpoint, include_top=args.include_top, classes=args.classes
    )
    bar.update(1)
    path = _save_atomically(args.output, model.save_weights)
    bar.update(2)
    top = "with" if args.include_top else "without"
    print(f"wrote {path} ({_megabytes(path)}, {model.name} {top} the classifier)")


def _add_model_arguments(parser, saved_model=True):
    """--model/--alpha/--groups/--weights (and --keras-model), shared by the commands."""
    parser.add_argument("--model", choices=sorted(VERSIONS), default="v2", help="default: v2")
    parser.add_argument("--alpha", type=float, default=1.0, help="width multiplier (default: 1.0)")
    parser.add_argument("--groups", type=int, default=3, help="V1 group count (default: 3)")
    parser.add_argument(
        "--weights",
        default="imagenet",
        type=weights_argument,
        help="'imagenet' (default), 'none' (random) or a weights file (.weights.h5, .keras, .pth)",
    )
    if saved_model:
        parser.add_argument("--keras-model", metavar="PATH", help="a saved .keras model instead")


def _add_export_command(commands):
    p = commands.add_parser(
        "export", help="write a .tflite (int8, float16, ...), .onnx or .keras model"
    )
    _add_model_arguments(p)
    p.add_argument(
        "--format",
        choices=tuple(EXPORT_SUFFIXES),
        default="tflite",
        help="tflite (default, batch 1), onnx (dynamic batch, through tf2onnx) or keras",
    )
    p.add_argument(
        "--quantization",
        choices=("int8", "float16", "float32", "dynamic"),
        help="tflite only; default: int8 (every op integer)",
    )
    p.add_argument("--calibration-dir", metavar="DIR", help="representative images (tflite int8)")
    p.add_argument(
        "--io-dtype", choices=("int8", "uint8"), help="tflite int8 model input/output (default: int8)"
    )
    p.add_argument("--opset", type=int, help="onnx only: ONNX opset, 14-18 (default: 17)")
    p.add_argument(
        "--input-size",
        type=_positive_int,
        help="input height and width (tflite default: 224; onnx default: any size)",
    )
    p.add_argument(
        "--output", required=True, metavar="PATH", help="the .tflite, .onnx or .keras file to write"
    )
    p.set_defaults(run=export)


def _add_convert_weights_command(commands):
    p = commands.add_parser(
        "convert-weights",
        help="convert a reference torch checkpoint (.pth) to Keras .weights.h5",
        description="Converts a torchvision (V2) or pytorchcv (V1) checkpoint, or one "
        "fine-tuned from them, to a Keras .weights.h5 file for machines without internet "
        "or torch. The checkpoint is read without running code from it.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the .pth (or .pt) state dict")
    p.add_argument("--model", choices=sorted(VERSIONS), default="v2", help="default: v2")
    p.add_argument("--alpha", type=float, default=1.0, help="width multiplier (default: 1.0)")
    p.add_argument("--groups", type=int, default=3, help="V1 group count (default: 3)")
    p.add_argument(
        "--classes", type=_positive_int, default=1000, help="classifier size (default: 1000)"
    )
    top = p.add_mutually_exclusive_group()
    top.add_argument(
        "--include-top",
        dest="include_top",
        action="store_true",
        default=True,
        help="keep the classifier (default)",
    )
    top.add_argument(
        "--no-top",
        dest="include_top",
        action="store_false",
        help="backbone only, for include_top=False models",
    )
    p.add_argument(
        "--output", required=True, metavar="PATH", help="the .weights.h5 file to write"
    )
    p.set_defaults(run=convert_weights)


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_benchmark_commands(commands):
    """The `benchmark` and `evaluate` sub-commands (phone-side tooling)."""
    p = commands.add_parser(
        "benchmark", help="latency of .tflite models (LiteRT here, or a phone over adb)"
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files")
    p.add_argument(
        "--threads",
        type=_positive_int,
        nargs="+",
        default=[1],
        help="CPU thread counts, one row each (default: 1)",
    )
    p.add_argument(
        "--runs", type=_positive_int, default=50, help="timed runs (default: 50)"
    )
    p.add_argument(
        "--warmup", type=int, default=5, help="untimed runs first (default: 5)"
    )
    p.add_argument(
        "--adb",
        action="store_true",
        help="run on an Android device with benchmark_model",
    )
    p.add_argument(
        "--benchmark-binary",
        metavar="PATH",
        help="TFLite benchmark_model binary for the device (with --adb)",
    )
    p.add_argument("--serial", help="adb device serial (with --adb)")
    p.add_argument("--gpu", action="store_true", help="GPU delegate (with --adb)")
    p.add_argument("--nnapi", action="store_true", help="NNAPI delegate (with --adb)")
    p.add_argument(
        "--no-xnnpack",
        dest="xnnpack",
        action="store_false",
        help="without the XNNPACK delegate (with --adb)",
    )
    p.add_argument(
        "--op-profiling",
        action="store_true",
        help="print benchmark_model's per-operator profile (with --adb)",
    )
    p.add_argument("--json-out", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(run=benchmark)

    p = commands.add_parser(
        "evaluate", help="agreement of a .tflite model with its Keras model on images"
    )
    p.add_argument("tflite", metavar="MODEL", help="the .tflite file")
    p.add_argument(
        "--images",
        required=True,
        metavar="DIR",
        help="folder of images, or of one sub-folder per class (WordNet ids for ImageNet)",
    )
    _add_model_arguments(p)
    p.add_argument(
        "--resize",
        type=_positive_int,
        help="shorter side before the crop (default: the weights' published size, or 256)",
    )
    p.add_argument(
        "--crop",
        type=_positive_int,
        help="centre crop; must match the .tflite input (default: published, or 224)",
    )
    p.add_argument("--limit", type=_positive_int, help="evaluate at most N images")
    p.set_defaults(run=evaluate)


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-shufflenet",
        description="ShuffleNet V1/V2 for Keras 3: classify images, list the variants, "
        "export to TFLite, ONNX or .keras, convert reference checkpoints, benchmark and "
        "evaluate on phones.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show tracebacks on errors"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="classify images with an ImageNet model")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)"
    )
    _add_model_arguments(p, saved_model=False)
    p.add_argument(
        "--top", type=int, default=5, help="classes shown per image (default: 5)"
    )
    p.set_defaults(run=predict)

    p = commands.add_parser("info", help="params, MACs and top-1 of every variant")
    p.add_argument(
        "--model", choices=("v1", "v2", "all"), default="all", help="default: all"
    )
    p.set_defaults(run=info)
    _add_export_command(commands)
    _add_convert_weights_command(commands)
    _add_benchmark_commands(commands)
    return parser


def _fail(args, error, code):
    if args.verbose:
        traceback.print_exc()
    message = str(error) if code == 2 else f"{type(error).__name__}: {error}"
    message = " ".join(message.split())  # one line, for scripts
    if code == 1 and not args.verbose:
        message += " (rerun with --verbose for the traceback)"
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv=None):
    """Runs the command line `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:  # bad input: files, names, arguments
        return _fail(args, error, 2)
    except Exception as error:  # noqa: BLE001 - reported, exit code 1
        return _fail(args, error, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
