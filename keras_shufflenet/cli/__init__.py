"""The `keras-shufflenet` command: classify, list, export, convert weights,
benchmark, evaluate. One module per subcommand; the options they share are
defined once in `keras_shufflenet.options`.

The subcommands that other front ends (`tflite/`) run are functions here:
`export`, `evaluate` and `benchmark` take the options' values as keyword
arguments and return the text the command prints; `run_reporting_errors`
runs one as the command does (one `error:` line, an exit code)."""

import argparse
import os
import sys
import traceback

from keras_shufflenet import logs, options
from keras_shufflenet.cli import (
    _benchmark,
    _convert_weights,
    _evaluate,
    _export,
    _info,
    _predict,
)
from keras_shufflenet.cli._benchmark import benchmark
from keras_shufflenet.cli._evaluate import evaluate
from keras_shufflenet.cli._export import export

_EXAMPLES = r"""examples:
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
  keras-shufflenet benchmark snv2_fp16.tflite --accelerator gpu
  keras-shufflenet evaluate snv2_int8.tflite snv2_fp32.tflite snv2.onnx --images imagenet/val --alpha 1.0
  keras-shufflenet evaluate my_int8.tflite --images flowers/val --keras-model my.keras \
      --class-index flowers.txt
  keras-shufflenet --verbose predict cat.jpg   # tracebacks and TensorFlow's logs

exit codes:
  0  success
  2  bad input or usage: arguments, missing or unreadable files, a checkpoint
     that is refused or does not match the model, a model the converter cannot take
  1  unexpected failure, such as a missing optional package (rerun with --verbose)
Errors print one "error: ..." line on stderr; a failed command writes no output file.
"""

_COMMANDS = (_predict, _info, _export, _convert_weights, _benchmark, _evaluate)


class _OneLineErrorParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one `error:` line (exit 2),
    like every other error of the command."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _parser():
    parser = _OneLineErrorParser(
        prog="keras-shufflenet",
        description="ShuffleNet V1/V2 for Keras 3: classify images, list the variants, "
        "export to TFLite, ONNX or .keras, convert reference checkpoints, benchmark and "
        "evaluate on phones.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_arguments(parser, (options.VERBOSE,))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser


def report(error, verbose=False):
    """Prints `error` as one `error: ...` line on stderr; returns the exit code:
    2 for bad input (`ValueError`, `OSError`), 1 for anything else."""
    code = 2 if isinstance(error, (ValueError, OSError)) else 1
    if verbose:
        traceback.print_exception(error)
    message = str(error) if code == 2 else f"{type(error).__name__}: {error}"
    message = " ".join(message.split())  # one line, for scripts
    if code == 1 and not verbose:
        message += " (rerun with --verbose for the traceback)"
    print(f"error: {message}", file=sys.stderr)
    return code


def run_reporting_errors(function, verbose=False):
    """Runs `function()` with other libraries' log lines kept out (unless
    `verbose`; `keras_shufflenet.logs`); returns the exit code (0, or `report`'s)."""
    try:
        if verbose:
            function()
        else:
            with logs.quiet():
                function()
        sys.stdout.flush()
    except BrokenPipeError:  # `keras-shufflenet info | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # noqa: BLE001 - reported with an exit code
        return report(error, verbose)
    return 0


def main(argv=None):
    """Runs the command line `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = _parser().parse_args(argv)
    return run_reporting_errors(lambda: args.run(args), args.verbose)


__all__ = ["benchmark", "evaluate", "export", "main", "report", "run_reporting_errors"]
