"""Latency versus accuracy of every ShuffleNet with published weights, as a PNG.

Reads the latencies that `benchmarks/tflite_latency.py --models published`
measured (its JSON under artifacts/benchmarks/) and takes each model's
published ImageNet top-1 from `keras_shufflenet.weights.REGISTRY`; draws
int8 and float32 latency (x, log scale) against top-1 (y), one line per
family, with int8 MobileNetV2's latency as a vertical reference. Needs
matplotlib (`pip install "keras-shufflenet[plot]"`).

    python3 -m benchmarks.tflite_latency --models published   # measures, then calls this
    python3 -m benchmarks.plot_latency_accuracy                # redraws from the last JSON
"""

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from keras_shufflenet import options
from keras_shufflenet.weights import REGISTRY

LATENCY_JSON = ROOT / "artifacts" / "benchmarks" / "tflite_latency_published.json"
PNG = ROOT / "docs" / "latency_accuracy.png"
BASELINE = "MobileNetV2 1.0"
FORMATS = {"int8": "o-", "float32": "s--"}


def family(version, groups):
    """A model's line in the plot: "ShuffleNetV2", "ShuffleNetV1 g3", ..."""
    return "ShuffleNetV2" if version == "v2" else f"ShuffleNetV1 g{groups}"


def model_name(version, alpha, groups):
    """The benchmarks' name of a model: "ShuffleNetV2 1.0x", "ShuffleNetV1 g3 0.5x"."""
    return f"{family(version, groups)} {alpha}x"


def load_points(path):
    """`{(family, format): [(latency_ms, top1, alpha), ...]}` and the baseline's latency."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"error: no latency measurements at {path}; "
            "run `python3 -m benchmarks.tflite_latency --models published` first"
        ) from None
    latency = {(r["model"], r["format"]): r["median_ms"] for r in record["results"]}
    points = {}
    for entry in REGISTRY:
        for fmt in FORMATS:
            key = (model_name(*entry.key), fmt)
            if key not in latency:
                raise SystemExit(f"error: {path} has no {fmt} figure for {key[0]}")
            points.setdefault((family(entry.version, entry.groups), fmt), []).append(
                (latency[key], entry.top1, entry.alpha)
            )
    return points, latency[(BASELINE, "int8")], record


def plot(points, baseline_ms, record, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    families = sorted({name for name, _ in points}, key=lambda n: (n != "ShuffleNetV2", n))
    colours = dict(zip(families, plt.get_cmap("tab10").colors))
    for (name, fmt), values in sorted(points.items(), key=lambda item: (
            families.index(item[0][0]), item[0][1] != "int8")):
        values.sort()
        xs, ys, alphas = zip(*values)
        ax.plot(xs, ys, FORMATS[fmt], color=colours[name], alpha=1.0 if fmt == "int8" else 0.45,
                label=f"{name} ({fmt})", markersize=5)
        if fmt == "int8":
            for x, y, alpha in values:
                ax.annotate(f"{alpha}x", (x, y), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color=colours[name])
    ax.axvline(baseline_ms, color="grey", linestyle=":", linewidth=1.2,
               label="MobileNetV2 1.0 (int8), latency")
    ax.set_xscale("log")
    ax.set_xlabel(f"TFLite latency, ms (LiteRT, batch 1, {record.get('plot_threads', record['threads'])} thread, x86-64)")
    ax.set_ylabel("ImageNet top-1, % (published float weights)")
    ax.set_title("ShuffleNet: latency versus accuracy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    fig.savefig(partial, format="png")
    plt.close(fig)
    partial.replace(out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("latency_json", nargs="?", default=str(LATENCY_JSON))
    parser.add_argument("--out", type=Path, default=PNG)
    options.add_arguments(parser, (options.VERBOSE,))
    args = parser.parse_args(argv)
    points, baseline_ms, record = load_points(args.latency_json)
    print(f"wrote {plot(points, baseline_ms, record, args.out)}")


if __name__ == "__main__":
    main()
