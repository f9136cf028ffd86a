"""Latency of `.tflite` models: locally with LiteRT, or on a phone over adb.

LiteRT has two runtimes, and both run here: `benchmark_local` runs the
`litert-benchmark` command that the `ai-edge-litert` package installs (a
`CompiledModel`: the "compiled" runtime) and reads its `--result_json`;
`benchmark_interpreter` times `Interpreter.invoke` in this process (the
"interpreter" runtime, which most apps call). On the CPU both say how
LiteRT's XNNPACK delegate takes the graph (`xnnpack_delegation`).
`benchmark_adb` pushes the model and the TFLite `benchmark_model` binary to
an Android device, runs it there and parses what it prints::

    Inference timings in us: Init: 5685, First inference: 18535, Warmup (avg): 14462.3, Inference (avg): 14154.1
    count=50 first=14241 curr=14105 min=13984 max=14877 avg=14154.1 std=160 p5=13999 median=14102 p95=14520

None imports TensorFlow or Keras, so a benchmark starts in a fraction of a
second. Sizes are in MB of 2**20 bytes, as `litert-benchmark` reports them.
"""

import dataclasses
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_shufflenet import _compat, _files, _table
from keras_shufflenet.runtime import _accelerator

RUNTIMES = ("compiled", "interpreter")  # litert-benchmark's CompiledModel, the Interpreter

DEVICE_DIR = "/data/local/tmp/keras_shufflenet"
# What adb prints when no device answers; it does not always exit non-zero.
ADB_ERRORS = re.compile(
    r"no devices/emulators found|error: device .* not found|device offline|"
    r"device unauthorized|more than one device/emulator",
    re.IGNORECASE,
)
_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_TIMINGS = re.compile(
    rf"Inference timings in us:[^\n]*?Inference \(avg\):\s*(?P<avg>{_NUMBER})"
)
# A statistics line of its own ("count=50 first=... avg=... p95=..."), possibly
# after a log prefix such as "INFO: ". Op-profiling sections hold lines like
# "Timings (microseconds): count=...", which this deliberately skips.
_COUNT_LINE = re.compile(r"^\s*(?:[A-Z]+:\s*)?(count=\d+.*)$", re.MULTILINE)
_STAT = re.compile(rf"(\w+)=({_NUMBER})")
_PROFILE_START = re.compile(r"^.*Profiling Info.*$", re.MULTILINE)


class BenchmarkError(OSError):
    """A benchmark tool or device could not run the model."""


@dataclasses.dataclass
class BenchmarkResult:
    """Latency of one model at one thread count (times in milliseconds).

    Attributes:
        model: Path of the `.tflite` file on this machine.
        size_mb: Its size in MB (2**20 bytes).
        threads: CPU threads the interpreter used.
        median_ms: Median latency of one inference.
        p5_ms: 5th percentile latency.
        p95_ms: 95th percentile latency.
        mean_ms: Mean latency.
        runs: Timed inferences behind the numbers.
        backend: The runtime: `"compiled"` (`litert-benchmark` here, LiteRT's
            `CompiledModel`), `"interpreter"` (LiteRT's `Interpreter` here) or
            `"adb"` (`benchmark_model` on an Android device).
        accelerator: `"cpu"` or `"gpu"` (LiteRT's accelerators), `None` on a phone.
        fully_accelerated: Whether every op ran on that accelerator: on the
            GPU, none left to the CPU; on the CPU, all in XNNPACK (`None`
            where not measured).
        xnnpack_partitions: On the CPU, the XNNPACK delegate's partitions of
            the graph (`None` elsewhere).
        xnnpack_ops: On the CPU, the graph's ops that XNNPACK runs.
        ops: On the CPU, the graph's ops.
        note: Caveats about the numbers (e.g. percentiles not reported), or `None`.
        op_profile: `benchmark_model`'s per-operator profile, raw, when asked for.
    """

    model: str
    size_mb: float
    threads: int
    median_ms: float
    p5_ms: float
    p95_ms: float
    mean_ms: float
    runs: int
    backend: str = "compiled"
    accelerator: str | None = None
    fully_accelerated: bool | None = None
    xnnpack_partitions: int | None = None
    xnnpack_ops: int | None = None
    ops: int | None = None
    note: str | None = None
    op_profile: str | None = None

    def to_dict(self):
        return dataclasses.asdict(self)


def check_counts(num_threads, num_runs, warmup_runs):
    for name, value, least in (
        ("num_threads", num_threads, 1),
        ("num_runs", num_runs, 1),
        ("warmup_runs", warmup_runs, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(
                f"`{name}` must be an integer >= {least}. Received: {name}={value!r}"
            )


def check_runtime(runtime):
    if runtime not in RUNTIMES:
        raise ValueError(f"`runtime` must be one of {RUNTIMES}. Received: runtime={runtime!r}")


def check_model_file(model_path):
    """`model_path` as a `Path`: an existing `.tflite` file."""
    return _files.existing_file(model_path, (".tflite",), "model_path", ".tflite model")


# ------------------------------------------------------------------ local


def litert_benchmark_command():
    """The command line prefix that runs `litert-benchmark`.

    Looks next to the running Python first (its virtual environment), then on
    `PATH`, then falls back to running the module with this Python.
    """
    names = ("litert-benchmark", "litert-benchmark.exe")
    for name in names:
        candidate = Path(sys.executable).parent / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("litert-benchmark")
    if found:
        return [found]
    module = "ai_edge_litert.tools.benchmark_litert_model"
    try:
        importable = importlib.util.find_spec(module) is not None
    except ImportError:
        importable = False
    if importable:
        return [sys.executable, "-m", module]
    raise BenchmarkError(
        "The `litert-benchmark` command was not found next to "
        f"{sys.executable} nor on PATH. Install it with `pip install ai-edge-litert`."
    )


def benchmark_local(model_path, num_threads=1, num_runs=50, warmup_runs=5, accelerator="cpu"):
    """Measures a `.tflite` model on this machine with `litert-benchmark`.

    Args:
        model_path: Path of the `.tflite` file.
        num_threads: CPU threads. Defaults to `1`.
        num_runs: Timed inferences. Defaults to `50`.
        warmup_runs: Untimed inferences first. Defaults to `5`.
        accelerator: `"cpu"`, or `"gpu"` for LiteRT's GPU accelerator (ops it
            does not take fall back to the CPU, and the result says the model
            is not fully accelerated). Defaults to `"cpu"`.

    Returns:
        A `BenchmarkResult` with `backend="compiled"`, `accelerator` and
        `fully_accelerated`; on the CPU, XNNPACK's partitions and ops (as the
        Interpreter's XNNPACK delegate takes the graph: see `xnnpack_delegation`).

    Raises:
        FileNotFoundError: `model_path` does not exist.
        BenchmarkError: the tool is missing, fails, or writes no result; no
            GPU device for `accelerator="gpu"`.
    """
    _accelerator.check_accelerator(accelerator)
    check_counts(num_threads, num_runs, warmup_runs)
    path = check_model_file(model_path)
    command = litert_benchmark_command()
    with tempfile.TemporaryDirectory(prefix="keras_shufflenet_bench_") as tmp:
        result_json = Path(tmp) / "result.json"
        command += [
            "--model", str(path),
            "--num_threads", str(num_threads),
            "--num_runs", str(num_runs),
            "--warmup_runs", str(warmup_runs),
            "--result_json", str(result_json),
            *(["--use_gpu"] if accelerator == "gpu" else []),
        ]  # fmt: skip
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise BenchmarkError(f"Could not run {command[0]!r}: {error}") from error
        output = proc.stderr + proc.stdout
        if proc.returncode != 0 or not result_json.is_file() or _accelerator.no_device(output):
            raise BenchmarkError(
                _accelerator.failure(
                    path, accelerator, proc.returncode, output, "litert-benchmark"
                )
            )
        report = json.loads(result_json.read_text())
    delegation = dict.fromkeys(_XNNPACK_FIELDS)
    if accelerator == "cpu":
        delegation = xnnpack_delegation(path)
    try:
        latency = report["latency"]
        result = BenchmarkResult(
            model=os.fspath(model_path),
            size_mb=_files.size_mb(path),
            threads=int(report.get("num_threads", num_threads)),
            median_ms=float(latency["median_ms"]),
            p5_ms=float(latency["p5_ms"]),
            p95_ms=float(latency["p95_ms"]),
            mean_ms=float(latency["avg_ms"]),
            runs=int(latency.get("num_runs", num_runs)),
            backend="compiled",
            accelerator=accelerator,
            # litert-benchmark (LiteRT 2.3) reports a model whose ops the GPU
            # refused and left to the CPU as fully accelerated; its log says
            # otherwise. On the CPU it always says False: XNNPACK's count decides.
            fully_accelerated=report.get("fully_accelerated") and not _accelerator.refused_ops(output),
            **delegation,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BenchmarkError(
            f"litert-benchmark wrote a result without the expected latency "
            f"fields ({error!r}): {json.dumps(report)[:500]}"
        ) from error
    if accelerator == "cpu":
        result.fully_accelerated = _whole(delegation)
    return result


_XNNPACK_FIELDS = ("xnnpack_partitions", "xnnpack_ops", "ops")


def _whole(delegation):
    return delegation["xnnpack_partitions"] == 1 and delegation["xnnpack_ops"] == delegation["ops"]


def _interpreter(path, num_threads=1):
    """A LiteRT `Interpreter` of `path` with its tensors allocated (and its
    default XNNPACK delegate applied)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise BenchmarkError(
            "Benchmarking here needs LiteRT: `pip install ai-edge-litert`."
        ) from error
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise BenchmarkError(f"LiteRT could not load {path}: {error}") from error
    return interpreter


def xnnpack_delegation(model_path):
    """How LiteRT's XNNPACK delegate (the CPU's) takes a `.tflite` model.

    Returns:
        `{"xnnpack_partitions": ..., "xnnpack_ops": ..., "ops": ...}`: the
        delegate's partitions of the graph, the ops in them, and the graph's
        ops. `(1, n, n)`: XNNPACK runs the whole graph.
    """
    return _delegation(_interpreter(check_model_file(model_path)))


def _delegation(interpreter):
    nodes = _compat.interpreter_nodes(interpreter)
    partitions = [node for node in nodes if node["op_name"] == "DELEGATE"]
    ops = [node for node in nodes if node["op_name"] != "DELEGATE"]
    from_partitions = {int(t) for node in partitions for t in node["outputs"]}
    producer = {int(t): node for node in ops for t in node["outputs"]}
    # The ops left out of the partitions: those that make what the partitions
    # and the graph's outputs need, and what those ops need in turn.
    needed = [int(t) for node in partitions for t in node["inputs"]]
    needed += [detail["index"] for detail in interpreter.get_output_details()]
    left = set()
    while needed:
        tensor = needed.pop()
        node = producer.get(tensor)
        if tensor in from_partitions or node is None or node["index"] in left:
            continue
        left.add(node["index"])
        needed += [int(t) for t in node["inputs"]]
    return {"xnnpack_partitions": len(partitions), "xnnpack_ops": len(ops) - len(left),
            "ops": len(ops)}  # fmt: skip


def benchmark_interpreter(model_path, num_threads=1, num_runs=50, warmup_runs=5):
    """Measures a `.tflite` model with LiteRT's `Interpreter`, in this process.

    What most apps call (`Interpreter.invoke`, XNNPACK on the CPU), where
    `litert-benchmark` runs a `CompiledModel`; the two can differ by several
    percent on the same file. Inputs are zeros; each `invoke` is timed.

    Returns:
        A `BenchmarkResult` with `backend="interpreter"`, `accelerator="cpu"`
        and XNNPACK's partitions and ops.

    Raises:
        FileNotFoundError, ValueError: `model_path` is not a `.tflite` file.
        BenchmarkError: LiteRT is not installed or cannot load the model.
    """
    check_counts(num_threads, num_runs, warmup_runs)
    path = check_model_file(model_path)
    interpreter = _interpreter(path, num_threads)
    delegation = _delegation(interpreter)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(warmup_runs):
        interpreter.invoke()
    times = np.empty(num_runs)
    for i in range(num_runs):
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = time.perf_counter() - start
    times *= 1e3
    return BenchmarkResult(
        model=os.fspath(model_path),
        size_mb=_files.size_mb(path),
        threads=num_threads,
        median_ms=float(np.median(times)),
        p5_ms=float(np.percentile(times, 5)),
        p95_ms=float(np.percentile(times, 95)),
        mean_ms=float(times.mean()),
        runs=num_runs,
        backend="interpreter",
        accelerator="cpu",
        fully_accelerated=_whole(delegation),
        **delegation,
    )


# -------------------------------------------------------------------- adb


def _adb(adb, serial, *args, check_output=True):
    """Runs `adb [-s serial] ARGS`; raises BenchmarkError naming the command."""
    command = [adb, *(["-s", serial] if serial else []), *args]
    shown = shlex.join(command)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BenchmarkError(
            f"Could not run `{shown}`: {error}. Is the Android platform-tools "
            "`adb` installed and on PATH (or passed as `adb=`)?"
        ) from error
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or (check_output and ADB_ERRORS.search(output)):
        hint = ""
        if ADB_ERRORS.search(output):
            hint = " Check that the phone is connected with USB debugging on (`adb devices`)."
        raise BenchmarkError(
            f"`{shown}` failed (exit code {proc.returncode}): {_accelerator.tool_reason(output)}.{hint}"
        )
    return output


def parse_benchmark_model_output(text):
    """Reads latency (ms) from `benchmark_model`'s output.

    Returns:
        A dict with `median_ms`, `p5_ms`, `p95_ms`, `mean_ms`, `runs` (or
        `None` when unknown), `note` and `op_profile` (text from the first
        "Profiling Info" line to the end, or `None`).

    Raises:
        BenchmarkError: no "Inference timings in us" line.
    """
    timings = _TIMINGS.search(text)
    if not timings:
        raise BenchmarkError(
            "benchmark_model printed no 'Inference timings in us' line: "
            f"{_accelerator.tool_reason(text)}"
        )
    mean_us = float(timings["avg"])
    stats = None
    # The last statistics line with percentiles before the timings is the timed
    # runs' (the first is the warmup's); some builds print it after them.
    before, after = text[: timings.start()], text[timings.end() :]
    for chunk in (before, after):
        for match in _COUNT_LINE.finditer(chunk):
            fields = {key: float(value) for key, value in _STAT.findall(match.group(1))}
            if {"median", "p5", "p95"} <= fields.keys():
                stats = fields
        if stats:
            break
    parsed = {"mean_ms": mean_us / 1000.0, "note": None, "op_profile": None}
    if stats:
        parsed.update(
            median_ms=stats["median"] / 1000.0,
            p5_ms=stats["p5"] / 1000.0,
            p95_ms=stats["p95"] / 1000.0,
            runs=int(stats["count"]) if "count" in stats else None,
        )
    else:
        parsed.update(
            median_ms=parsed["mean_ms"],
            p5_ms=parsed["mean_ms"],
            p95_ms=parsed["mean_ms"],
            runs=None,
            note=(
                "this benchmark_model build prints no percentiles: "
                "median, p5 and p95 are the average"
            ),
        )
    profile = _PROFILE_START.search(text)
    if profile:
        parsed["op_profile"] = text[profile.start() :].strip()
    return parsed


def benchmark_adb(
    model_path,
    benchmark_binary,
    num_threads=1,
    num_runs=50,
    warmup_runs=5,
    use_xnnpack=True,
    use_gpu=False,
    use_nnapi=False,
    op_profiling=False,
    adb="adb",
    serial=None,
    device_dir=DEVICE_DIR,
):
    """Measures a `.tflite` model on an Android device with `benchmark_model`.

    Pushes the model and the binary to `device_dir`, then runs
    `benchmark_model --graph=... --num_threads=N --warmup_runs=W --num_runs=R
    --use_xnnpack=true|false [--use_gpu=true] [--use_nnapi=true]
    [--enable_op_profiling=true]` with `adb shell`.

    Args:
        model_path: Path of the `.tflite` file on this machine.
        benchmark_binary: Path of the TFLite `benchmark_model` binary built
            for the device (e.g. `android_aarch64_benchmark_model`).
        num_threads: CPU threads. Defaults to `1`.
        num_runs: Timed inferences. Defaults to `50`.
        warmup_runs: Untimed inferences first. Defaults to `5`.
        use_xnnpack: Use the XNNPACK delegate. Defaults to `True`.
        use_gpu: Use the GPU delegate. Defaults to `False`.
        use_nnapi: Use the NNAPI delegate. Defaults to `False`.
        op_profiling: Keep the per-operator profile in `op_profile`.
            Defaults to `False`.
        adb: The adb executable. Defaults to `"adb"` (found on PATH).
        serial: Device serial (`adb -s`), for more than one device.
            Defaults to `None`.
        device_dir: Working folder on the device.
            Defaults to `"/data/local/tmp/keras_shufflenet"`.

    Returns:
        A `BenchmarkResult` with `backend="adb"`.

    Raises:
        FileNotFoundError: the model or the binary does not exist.
        BenchmarkError: an adb command fails (no device, ...) or
            `benchmark_model` prints no timings.
    """
    check_counts(num_threads, num_runs, warmup_runs)
    path = check_model_file(model_path)
    if not Path(benchmark_binary).is_file():
        raise FileNotFoundError(
            "No benchmark_model binary exists at that path; download or build the "
            "TFLite `benchmark_model` for the device's CPU (e.g. "
            f"android_aarch64_benchmark_model). Received: benchmark_binary="
            f"{os.fspath(benchmark_binary)!r}"
        )
    device_dir = device_dir.rstrip("/")
    device_model = f"{device_dir}/{path.name}"
    device_binary = f"{device_dir}/benchmark_model"
    _adb(adb, serial, "shell", "mkdir", "-p", shlex.quote(device_dir))
    _adb(adb, serial, "push", str(path), f"{device_dir}/")
    _adb(adb, serial, "push", os.fspath(benchmark_binary), device_binary)
    _adb(adb, serial, "shell", "chmod", "+x", shlex.quote(device_binary))
    flags = [
        f"--graph={shlex.quote(device_model)}",
        f"--num_threads={num_threads}",
        f"--warmup_runs={warmup_runs}",
        f"--num_runs={num_runs}",
        f"--use_xnnpack={'true' if use_xnnpack else 'false'}",
    ]
    if use_gpu:
        flags.append("--use_gpu=true")
    if use_nnapi:
        flags.append("--use_nnapi=true")
    if op_profiling:
        flags.append("--enable_op_profiling=true")
    output = _adb(
        adb, serial, "shell", shlex.quote(device_binary), *flags, check_output=False
    )
    parsed = parse_benchmark_model_output(output)
    if op_profiling and parsed["op_profile"] is None:
        parsed["note"] = "; ".join(
            filter(None, [parsed["note"], "no operator profile in the output"])
        )
    if not op_profiling:
        parsed["op_profile"] = None
    return BenchmarkResult(
        model=os.fspath(model_path),
        size_mb=_files.size_mb(path),
        threads=num_threads,
        median_ms=parsed["median_ms"],
        p5_ms=parsed["p5_ms"],
        p95_ms=parsed["p95_ms"],
        mean_ms=parsed["mean_ms"],
        runs=parsed["runs"] or num_runs,
        backend="adb",
        note=parsed["note"],
        op_profile=parsed["op_profile"],
    )


# ------------------------------------------------------------------ table


def _accelerated(result):
    """On the CPU, XNNPACK's partitions and ops ("XNNPACK 1 partition, 198/198
    ops": all of them); elsewhere whether the accelerator took every op."""
    if result.accelerator == "cpu" and result.xnnpack_partitions is not None:
        plural = "" if result.xnnpack_partitions == 1 else "s"
        return (f"XNNPACK {result.xnnpack_partitions} partition{plural}, "
                f"{result.xnnpack_ops}/{result.ops} ops")  # fmt: skip
    return {True: "yes", False: "no", None: "-"}[result.fully_accelerated]


def format_table(results):
    """An aligned text table of `BenchmarkResult`s, notes below it: which
    runtime made each row, and how the accelerator took the graph."""
    header = (
        "model", "runtime", "threads", "size (MB)", "median ms", "p5 ms", "p95 ms",
        "accelerated",
    )  # fmt: skip
    rows = [
        (
            os.path.basename(r.model),
            r.backend + (f" {r.accelerator}" if r.accelerator else ""),
            str(r.threads),
            f"{r.size_mb:.2f}",
            f"{r.median_ms:.2f}",
            f"{r.p5_ms:.2f}",
            f"{r.p95_ms:.2f}",
            _accelerated(r),
        )
        for r in results
    ]
    lines = _table.aligned(header, rows)
    for r in results:
        if r.note:
            lines.append(
                f"note ({os.path.basename(r.model)}, {r.threads} threads): {r.note}"
            )
    return "\n".join(lines)
