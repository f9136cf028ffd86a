"""Training and inference throughput on CPU: this package's ShuffleNetV2 1.0x
(Keras 3, TensorFlow backend) against torchvision's `shufflenet_v2_x1_0`,
measured side by side in one process.

Training: batch 32 at 224x224, SGD with momentum 0.9, cross-entropy; Keras
through `model.fit` on an in-memory batch repeated (no XLA by default: on CPU
`--jit-compile true` measured 7.8 vs 42 images/s training, 59 vs 243 inference),
PyTorch with a plain loop (forward, loss, backward, step). Inference: batch
32, Keras `predict_on_batch` against PyTorch `model.eval()` under
`torch.inference_mode()`. Both networks get the same normalised random input
(the Keras model built with `include_preprocessing=False`, as torchvision's
model has no normalisation inside). Rounds interleave the two sides; the median
images/s of the rounds is reported, with the ratio Keras / PyTorch. Both use
every core. Prints a markdown table and writes it, with the raw numbers,
under artifacts/benchmarks/.

`--data-formats` adds a second table: Keras `fit` and `predict_on_batch`
of the same model built channels_last and channels_first, interleaved in
one process per backend (PyTorch, JAX; TensorFlow has no channels-first
convolution on CPUs), with the ratio channels_first / channels_last.

    python3 -m benchmarks.training_throughput --rounds 5 --steps 10 --data-formats
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from keras_shufflenet import logs, options  # noqa: E402

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

# torchvision loads triton, whose LLVM crashes the process when it loads after
# TensorFlow's: import it first.
import torch
import torchvision

import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]

import keras_shufflenet as ks

OUT = ROOT / "artifacts" / "benchmarks"
GOALS = {"training": 1.0, "inference": 1.5}
FORMAT_BACKENDS = ("torch", "jax")
DATA_FORMATS = ("channels_last", "channels_first")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_arguments(parser, (options.VERBOSE,))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--inference-steps", type=int, default=20,
                        help="inference batches per round")
    parser.add_argument("--jit-compile", choices=["true", "false"], default="false",
                        help="XLA for Keras' train and predict steps (measured slower on CPU)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the results")
    parser.add_argument("--data-formats", action="store_true",
                        help="also time channels_first against channels_last on PyTorch and JAX")
    parser.add_argument("--format-worker", choices=FORMAT_BACKENDS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class TorchSide:
    def __init__(self, batch, size):
        torch.manual_seed(0)
        self.model = torchvision.models.shufflenet_v2_x1_0(weights=None)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randint(0, 1000, (batch,))

    def train(self, steps):
        self.model.train()
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.x), self.y)
            loss.backward()
            self.optimizer.step()
        return loss.item()

    def infer(self, steps):
        self.model.eval()
        with torch.inference_mode():
            for _ in range(steps):
                out = self.model(self.x)
        return float(out[0, 0])


class KerasSide:
    def __init__(self, batch, size, jit_compile):
        keras.utils.set_random_seed(0)
        self.model = ks.ShuffleNetV2(alpha=1.0, weights=None, input_shape=(size, size, 3),
                                     classifier_activation=None, include_preprocessing=False)
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((batch, size, size, 3), dtype="float32")
        y = np.eye(1000, dtype="float32")[rng.integers(0, 1000, batch)]
        # One batch in memory: nothing for tf.data's autotuner to tune, and
        # its thread would hold each `fit` at the end until its next wake-up
        # (periods double from 10 ms: a 5 s fit measured 10.24 s).
        options = tf.data.Options()
        options.autotune.enabled = False
        self.data = tf.data.Dataset.from_tensors((self.x, y)).repeat().with_options(options)

    def train(self, steps):
        history = self.model.fit(self.data, epochs=1, steps_per_epoch=steps, verbose=0)
        return history.history["loss"][-1]

    def infer(self, steps):
        for _ in range(steps):
            out = self.model.predict_on_batch(self.x)
        return float(out[0, 0])


class FormatSide:
    """Keras `fit` and `predict_on_batch` of ShuffleNetV2 1.0x built in `data_format`."""

    def __init__(self, batch, size, data_format):
        keras.config.set_image_data_format(data_format)
        keras.utils.set_random_seed(0)
        shape = (3, size, size) if data_format == "channels_first" else (size, size, 3)
        self.model = ks.ShuffleNetV2(alpha=1.0, weights=None, input_shape=shape,
                                     classifier_activation=None, include_preprocessing=False)
        self.model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((batch, *shape), dtype="float32")
        self.y = rng.integers(0, 1000, batch)
        keras.config.set_image_data_format("channels_last")

    def train(self, steps):
        for _ in range(steps):
            loss = self.model.train_on_batch(self.x, self.y)
        return loss

    def infer(self, steps):
        for _ in range(steps):
            out = self.model.predict_on_batch(self.x)
        return float(out[0, 0])


def format_worker(args):
    """Interleaved rounds of both data formats on this process' backend: JSON on stdout."""
    batch, size = args.batch_size, args.image_size
    sides = {fmt: FormatSide(batch, size, fmt) for fmt in DATA_FORMATS}
    for side in sides.values():
        side.train(2)
        side.infer(2)
    rates = {kind: {fmt: [] for fmt in sides} for kind in ("training", "inference")}
    for round_index in range(args.rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        for fmt in order:
            rates["training"][fmt].append(_timed(sides[fmt].train, args.steps, batch))
        for fmt in order:
            rates["inference"][fmt].append(_timed(sides[fmt].infer, args.inference_steps, batch))
    print(json.dumps(rates))
    return 0


def data_format_rates(args):
    """`{backend: {kind: {data_format: [images/s per round]}}}`, one subprocess per backend."""
    import subprocess

    results = {}
    for backend in FORMAT_BACKENDS:
        argv = [sys.executable, "-m", "benchmarks.training_throughput", "--format-worker", backend,
                "--batch-size", str(args.batch_size), "--image-size", str(args.image_size),
                "--rounds", str(args.rounds), "--steps", str(args.steps),
                "--inference-steps", str(args.inference_steps)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def data_format_table(rates, args):
    lines = [
        "",
        f"Keras data formats: ShuffleNetV2 1.0x, batch {args.batch_size}, "
        f"{args.image_size}x{args.image_size}, median of {args.rounds} interleaved rounds",
        "",
        "| backend | kind | channels_last (images/s) | channels_first (images/s) | first / last |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, kinds in rates.items():
        for kind, values in kinds.items():
            last, first = (statistics.median(values[fmt]) for fmt in DATA_FORMATS)
            lines.append(f"| {backend} | {kind} | {last:.1f} | {first:.1f} | {first / last:.2f}x |")
    return "\n".join(lines)


def _timed(function, steps, batch):
    start = time.perf_counter()
    function(steps)
    return steps * batch / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    if args.format_worker:
        return format_worker(args)
    batch, size = args.batch_size, args.image_size
    sides = {"keras": KerasSide(batch, size, args.jit_compile == "true"),
             "torch": TorchSide(batch, size)}
    for side in sides.values():  # warm-up: compile, allocate
        side.train(2)
        side.infer(2)
    rates = {kind: {name: [] for name in sides} for kind in ("training", "inference")}
    for round_index in range(args.rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        for name in order:
            rates["training"][name].append(_timed(sides[name].train, args.steps, batch))
        for name in order:
            rates["inference"][name].append(
                _timed(sides[name].infer, args.inference_steps, batch))
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{kind} {name} {values[name][-1]:.1f}/s"
            for kind, values in rates.items() for name in sides), file=sys.stderr, flush=True)
    result = {
        "config": {**{k: str(v) for k, v in vars(args).items()}, "cpu_count": os.cpu_count(),
                   "torch": torch.__version__, "torchvision": torchvision.__version__,
                   "tensorflow": tf.__version__, "keras": keras.__version__},
        "images_per_second": {kind: {name: statistics.median(v) for name, v in values.items()}
                              for kind, values in rates.items()},
        "rounds": rates,
    }
    result["ratio"] = {kind: m["keras"] / m["torch"]
                       for kind, m in result["images_per_second"].items()}
    result["goals"] = {kind: {"at_least": goal, "met": result["ratio"][kind] >= goal}
                       for kind, goal in GOALS.items()}
    lines = [
        f"ShuffleNetV2 1.0x, batch {batch}, {size}x{size}, CPU ({os.cpu_count()} cores), "
        f"median of {args.rounds} interleaved rounds",
        "",
        f"| | keras_shufflenet (Keras 3, TF{', XLA' if args.jit_compile == 'true' else ''}) "
        "| torchvision | ratio | goal |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in ("training", "inference"):
        m = result["images_per_second"][kind]
        lines.append(f"| {kind} (images/s) | {m['keras']:.1f} | {m['torch']:.1f} | "
                     f"{result['ratio'][kind]:.2f}x | >= {GOALS[kind]:g}x |")
    table = "\n".join(lines)
    if args.data_formats:
        result["data_formats"] = data_format_rates(args)
        table += "\n" + data_format_table(result["data_formats"], args)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "training_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "training_throughput.md").write_text(table + "\n")
    return 0 if all(goal["met"] for goal in result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
