"""int8 TFLite latency of ShuffleNets against MobileNetV2, measured side by side.

Exports every model with `keras_shufflenet.export_tflite` (default options:
preprocessing inside, int8 input and output) and Keras' MobileNetV2 1.0 with
the plain converter recipe (`model.export(format="litert")` with
`Optimize.DEFAULT`, a representative dataset and int8 builtins), then runs
LiteRT's `litert-benchmark` on one thread, batch 1, interleaving the models
round by round. Prints a markdown table and writes it, with the raw numbers,
under artifacts/benchmarks/.

    python benchmarks/tflite_latency.py --rounds 5 --runs 100
"""

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_shufflenet as ks  # noqa: E402
from keras_shufflenet.benchmarking import benchmark_local  # noqa: E402
from keras_shufflenet.export import export_tflite  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "artifacts" / "benchmarks"
SHUFFLENETS = {
    "ShuffleNetV2 0.5x": lambda: ks.ShuffleNetV2(alpha=0.5, weights=None),
    "ShuffleNetV2 1.0x": lambda: ks.ShuffleNetV2(alpha=1.0, weights=None),
    "ShuffleNetV2 1.5x": lambda: ks.ShuffleNetV2(alpha=1.5, weights=None),
    "ShuffleNetV2 2.0x": lambda: ks.ShuffleNetV2(alpha=2.0, weights=None),
    "ShuffleNetV1 g3 1.0x": lambda: ks.ShuffleNetV1(groups=3, alpha=1.0, weights=None),
}
BASELINE = "MobileNetV2 1.0"


def calibration_images(count=32, seed=0):
    """Smooth random images: latency does not depend on the calibration content."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (count, 14, 14, 3)).astype("float32")
    return tf.image.resize(small, (224, 224)).numpy()


def export_mobilenet_v2(path, images):
    model = keras.applications.MobileNetV2(weights=None)
    scaled = images / 127.5 - 1.0

    def representative_dataset():
        for image in scaled:
            yield [image[None]]

    model.export(
        str(path),
        format="litert",
        input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.float32)],
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_dataset,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        inference_input_type=tf.int8,
        inference_output_type=tf.int8,
    )


def export_all(folder, quantizations):
    images = calibration_images()
    files = {}
    for name, build in SHUFFLENETS.items():
        model = build()
        for quantization in quantizations:
            path = folder / f"{name.replace(' ', '_')}_{quantization}.tflite"
            data = images if quantization == "int8" else None
            export_tflite(model, path, quantization, data, input_size=224)
            files[(name, quantization)] = path
        keras.backend.clear_session()
    files[(BASELINE, "int8")] = folder / "MobileNetV2_int8.tflite"
    export_mobilenet_v2(files[(BASELINE, "int8")], images)
    return files


def measure(files, rounds, runs, threads):
    """Median latency per model over `rounds` interleaved rounds."""
    medians = {key: [] for key in files}
    for _ in range(rounds):
        for key, path in files.items():
            result = benchmark_local(path, num_threads=threads, num_runs=runs, warmup_runs=10)
            medians[key].append(result.median_ms)
    return {key: statistics.median(values) for key, values in medians.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quantizations", default="int8,float16,float32")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    files = export_all(OUT, args.quantizations.split(","))
    latency = measure(files, args.rounds, args.runs, args.threads)
    base = latency[(BASELINE, "int8")]
    rows = ["| model | format | size (MB) | median latency (ms) | ratio to int8 MobileNetV2 |", "|---|---|---:|---:|---:|"]
    for (name, quantization), path in files.items():
        size = path.stat().st_size / 2**20
        ms = latency[(name, quantization)]
        rows.append(f"| {name} | {quantization} | {size:.2f} | {ms:.2f} | {ms / base:.3f} |")
    table = "\n".join(rows)
    print(table)
    record = {
        "threads": args.threads,
        "rounds": args.rounds,
        "runs": args.runs,
        "results": [
            {"model": n, "format": q, "median_ms": latency[(n, q)], "size_bytes": files[(n, q)].stat().st_size}
            for (n, q) in files
        ],
        "ratio_v2_1x_int8_to_mobilenetv2_int8": latency[("ShuffleNetV2 1.0x", "int8")] / base,
    }
    (OUT / "tflite_latency.json").write_text(json.dumps(record, indent=2))
    (OUT / "tflite_latency.md").write_text(table + "\n")
    print(f"ShuffleNetV2 1.0x int8 / MobileNetV2 int8 = {record['ratio_v2_1x_int8_to_mobilenetv2_int8']:.3f}")


if __name__ == "__main__":
    main()
