"""Benchmarks: LiteRT on this machine, and benchmark_model over a stand-in adb."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_shufflenet.runtime import _benchmark as benchmarking

from helpers import ROOT, run_cli

DEVICE_DIR = "/data/local/tmp/keras_shufflenet"


# ---------------------------------------------------------------- local


def test_benchmark_local_float_and_int8(tiny_tflite):
    results = [
        benchmarking.benchmark_local(tiny_tflite[k], num_runs=10, warmup_runs=1)
        for k in ("float.tflite", "int8.tflite")
    ]
    for result, key in zip(results, ("float.tflite", "int8.tflite")):
        assert result.backend == "compiled"
        assert result.threads == 1 and result.runs == 10
        assert result.median_ms > 0
        assert result.p5_ms <= result.median_ms <= result.p95_ms
        assert result.mean_ms > 0
        assert result.size_mb == pytest.approx(
            os.path.getsize(tiny_tflite[key]) / 2**20
        )
        assert result.note is None and result.op_profile is None
    assert results[1].size_mb < results[0].size_mb / 2  # int8 weights
    table = benchmarking.format_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["model", "runtime", "threads", "size", "(MB)", "median",
                                "ms", "p5", "ms", "p95", "ms", "accelerated"]  # fmt: skip
    # On the CPU, what XNNPACK took: the mirror's REVERSE_V2 stays out (docs/phones.md).
    for result, line in zip(results, lines[2:]):
        assert result.xnnpack_partitions == 1 and result.xnnpack_ops < result.ops
        assert result.fully_accelerated is False
        assert line.endswith(f"XNNPACK 1 partition, {result.xnnpack_ops}/{result.ops} ops")
    assert "tiny_float.tflite" in lines[2] and "tiny_int8.tflite" in lines[3]
    assert f"{results[1].size_mb:.2f}" in lines[3]
    assert len({len(line) for line in lines[:2]}) == 1  # aligned columns


def test_benchmark_interpreter_times_invoke(tiny_tflite, tmp_path):
    result = benchmarking.benchmark_interpreter(tiny_tflite["int8.tflite"], num_runs=20, warmup_runs=2)
    assert result.backend == "interpreter" and result.accelerator == "cpu"
    assert result.xnnpack_partitions == 1 and 0 < result.xnnpack_ops < result.ops
    assert result.threads == 1 and result.runs == 20
    assert 0 < result.p5_ms <= result.median_ms <= result.p95_ms
    not_a_model = tmp_path / "notes.tflite"
    not_a_model.write_text("not a flatbuffer")
    with pytest.raises(benchmarking.BenchmarkError, match="notes.tflite"):
        benchmarking.benchmark_interpreter(not_a_model)
    with pytest.raises(ValueError, match="num_runs"):
        benchmarking.benchmark_interpreter(tiny_tflite["int8.tflite"], num_runs=0)


def _tflite(path, *layers):
    """A `.tflite` of a float 8x8x4 graph that applies `layers` (functions) in turn."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 4), tf.float32)])
    def graph(x):
        for layer in layers:
            x = layer(x)
        return x

    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.get_concrete_function()])
    path.write_bytes(converter.convert())
    return path


def test_xnnpack_partitions_and_the_ops_left_out(tmp_path):
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(0).normal(size=(1, 1, 4, 4)), tf.float32)

    def conv(x):
        return tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))

    def reverse(x):  # REVERSE_V2: no XNNPACK kernel, LiteRT's own runs it
        return tf.reverse(x, axis=[1])

    whole = _tflite(tmp_path / "whole.tflite", conv, conv)
    split = _tflite(tmp_path / "split.tflite", conv, reverse, conv)
    ends = _tflite(tmp_path / "ends.tflite", reverse, conv, reverse)
    assert benchmarking.xnnpack_delegation(whole) == {
        "xnnpack_partitions": 1, "xnnpack_ops": 2, "ops": 2}  # fmt: skip
    assert benchmarking.xnnpack_delegation(split) == {
        "xnnpack_partitions": 2, "xnnpack_ops": 2, "ops": 3}  # fmt: skip
    assert benchmarking.xnnpack_delegation(ends) == {
        "xnnpack_partitions": 1, "xnnpack_ops": 1, "ops": 3}  # fmt: skip
    results = [benchmarking.benchmark_interpreter(p, num_runs=2) for p in (whole, split)]
    assert [r.fully_accelerated for r in results] == [True, False]
    rows = benchmarking.format_table(results).splitlines()[2:]
    assert rows[0].endswith("XNNPACK 1 partition, 2/2 ops")
    assert rows[1].endswith("XNNPACK 2 partitions, 2/3 ops")


def test_op_attribution_variants_remove_one_op_type(tiny_tflite):
    """The benchmark's variants: "kept" computes what the graph computes and
    exposes the inputs of the op type's ops; "removed" has none of them."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from benchmarks import tflite_op_attribution as attribution

    data = tiny_tflite["int8.tflite"].read_bytes()
    counts = attribution.op_counts(data)
    assert counts["CONV_2D"] > 0

    def run(model_content):
        interpreter = Interpreter(model_content=model_content)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():
            info = np.iinfo(detail["dtype"])
            interpreter.set_tensor(detail["index"], rng.integers(info.min, info.max, detail["shape"], detail["dtype"]))
        interpreter.invoke()
        return interpreter, [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]

    _, (original,) = run(data)
    kept = attribution.variant(data, "CONV_2D", remove=False)
    interpreter, outputs = run(kept)
    assert attribution.op_counts(kept) == counts
    assert len(outputs) > 1 and any(np.array_equal(original, y) for y in outputs)
    removed = attribution.variant(data, "CONV_2D", remove=True)
    assert "CONV_2D" not in attribution.op_counts(removed)
    interpreter, _ = run(removed)
    assert len(interpreter.get_input_details()) == 1 + counts["CONV_2D"]


def test_benchmark_local_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        benchmarking.benchmark_local(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="num_runs=0"):
        benchmarking.benchmark_local(tmp_path / "missing.tflite", num_runs=0)

    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(
        benchmarking.BenchmarkError, match="litert-benchmark failed"
    ) as info:
        benchmarking.benchmark_local(junk, num_runs=1, warmup_runs=0)
    assert "junk.tflite" in str(info.value)
    assert "Failed" in str(info.value)  # the tool's own reason, from its stderr

    # No litert-benchmark anywhere.
    monkeypatch.setattr(benchmarking.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(benchmarking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(benchmarking.BenchmarkError, match="pip install ai-edge-litert"):
        benchmarking.benchmark_local(junk)


# ------------------------------------------------------------------ adb

FAKE_ADB = r"""#!{python}
import json, os, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\n")
mode = os.environ.get("FAKE_ADB_MODE", "ok")
if mode == "nodevice":
    sys.stderr.write("adb: error: no devices/emulators found\n")
    sys.exit(1)
rest = argv[2:] if argv[:1] == ["-s"] else argv
if rest[:1] == ["shell"] and rest[1].endswith("/benchmark_model"):
    flags = rest[2:]
    graph = [f for f in flags if f.startswith("--graph=")][0][len("--graph="):]
    threads = [f for f in flags if f.startswith("--num_threads=")][0].split("=")[1]
    print("INFO: STARTING!")
    print("INFO: Log parameter values verbosely: [0]")
    print("INFO: Num threads: [%s]" % threads)
    print("INFO: Graph: [%s]" % graph)
    print("INFO: #threads used for CPU inference: [%s]" % threads)
    print("INFO: Use xnnpack: [1]")
    print("INFO: Loaded model %s" % graph)
    print("INFO: Initialized TensorFlow Lite runtime.")
    print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    print("INFO: Explicitly applied XNNPACK delegate, and the model graph will be "
          "completely executed by the delegate.")
    print("INFO: The input model file size (MB): 1.45477")
    print("INFO: Initialized session in 5.685ms.")
    print("INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds "
          "but terminate if exceeding 150 seconds.")
    if mode == "ok":
        print("INFO: count=35 first=18535 curr=14300 min=14102 max=18535 avg=14462.3 "
              "std=712 p5=14110 median=14390 p95=18001")
    elif mode == "old":
        print("INFO: count=35 first=18535 curr=14300 min=14102 max=18535 avg=14462.3 std=712")
    print("")
    print("INFO: Running benchmark for at least 50 iterations and at least 1 seconds "
          "but terminate if exceeding 150 seconds.")
    if mode == "ok":
        print("INFO: count=50 first=14241 curr=14105 min=13984 max=14877 avg=14154.1 "
              "std=160 p5=13999 median=14102 p95=14520")
    elif mode == "old":
        print("INFO: count=50 first=14241 curr=14105 min=13984 max=14877 avg=14154.1 std=160")
    print("")
    print("INFO: Inference timings in us: Init: 5685, First inference: 18535, "
          "Warmup (avg): 14462.3, Inference (avg): 14154.1")
    print("INFO: Note: as the benchmark tool itself affects memory footprint, the "
          "following is only APPROXIMATE to the actual memory footprint of the model "
          "at runtime. Take the information at your discretion.")
    print("INFO: Memory footprint delta from the start of the tool (MB): "
          "init=6.42188 overall=10.5234")
    if "--enable_op_profiling=true" in flags:
        print("Operator-wise Profiling Info for Regular Benchmark Runs:")
        print("============================== Run Order ==============================")
        print("\t [node type]\t [first]\t [avg ms]\t [%]\t [cdf%]\t [mem KB]\t"
              "[times called]\t[Name]")
        print("\t TfLiteXNNPackDelegate\t 14.102\t 14.050\t 99.9%\t 99.9%\t 0.000\t 1\t"
              "[StatefulPartitionedCall_1:0]_1")
        print("Timings (microseconds): count=50 first=14102 curr=14050 min=13901 "
              "max=14800 avg=14050 std=150 p5=1 median=2 p95=3")
        print("Memory (bytes): count=0")
        print("1 nodes observed")
"""


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """A stand-in `adb` first on PATH; returns a reader of its logged argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.replace("{python}", sys.executable))
    adb.chmod(0o755)
    log = tmp_path / "adb_log.jsonl"
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.setenv("FAKE_ADB_MODE", "ok")

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


@pytest.fixture
def phone_files(tmp_path):
    model = tmp_path / "snv2_int8.tflite"
    model.write_bytes(b"\0" * 1_525_440)
    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_bytes(b"\x7fELF fake")
    return model, binary


def test_benchmark_adb_calls_and_parsing(fake_adb, phone_files):
    model, binary = phone_files
    result = benchmarking.benchmark_adb(
        model, binary, num_threads=4, num_runs=50, warmup_runs=3, use_gpu=True,
        serial="emulator-5554",
    )  # fmt: skip
    s = ["-s", "emulator-5554"]
    assert fake_adb() == [
        [*s, "shell", "mkdir", "-p", DEVICE_DIR],
        [*s, "push", str(model), DEVICE_DIR + "/"],
        [*s, "push", str(binary), DEVICE_DIR + "/benchmark_model"],
        [*s, "shell", "chmod", "+x", DEVICE_DIR + "/benchmark_model"],
        [
            *s, "shell", DEVICE_DIR + "/benchmark_model",
            f"--graph={DEVICE_DIR}/snv2_int8.tflite",
            "--num_threads=4", "--warmup_runs=3", "--num_runs=50",
            "--use_xnnpack=true", "--use_gpu=true",
        ],
    ]  # fmt: skip
    assert result.backend == "adb"
    assert result.threads == 4 and result.runs == 50
    # The timed runs' line, not the warmup's (microseconds -> milliseconds).
    assert result.median_ms == pytest.approx(14.102)
    assert result.p5_ms == pytest.approx(13.999)
    assert result.p95_ms == pytest.approx(14.520)
    assert result.mean_ms == pytest.approx(14.1541)
    assert result.size_mb == pytest.approx(1_525_440 / 2**20)
    assert result.note is None and result.op_profile is None
    table = benchmarking.format_table([result])
    assert "snv2_int8.tflite  adb" in table and "14.10" in table and "14.52" in table


def test_benchmark_adb_flags_and_op_profile(fake_adb, phone_files):
    model, binary = phone_files
    result = benchmarking.benchmark_adb(
        model, binary, use_xnnpack=False, use_nnapi=True, op_profiling=True,
        device_dir="/data/local/tmp/other/",
    )  # fmt: skip
    calls = fake_adb()
    assert [c[:2] for c in calls] == [["shell", "mkdir"], ["push", str(model)],
                                      ["push", str(binary)], ["shell", "chmod"],
                                      ["shell", "/data/local/tmp/other/benchmark_model"]]  # fmt: skip
    assert calls[0][-1] == "/data/local/tmp/other"
    assert calls[-1][2:] == [
        "--graph=/data/local/tmp/other/snv2_int8.tflite", "--num_threads=1",
        "--warmup_runs=5", "--num_runs=50", "--use_xnnpack=false", "--use_nnapi=true",
        "--enable_op_profiling=true",
    ]  # fmt: skip
    assert result.op_profile.startswith("Operator-wise Profiling Info")
    assert "TfLiteXNNPackDelegate" in result.op_profile
    # The profile's own "Timings (microseconds): count=..." line is not the latency.
    assert result.median_ms == pytest.approx(14.102)


@pytest.mark.parametrize("mode", ["old", "nocount"])
def test_benchmark_adb_without_percentiles_falls_back_to_avg(
    fake_adb, phone_files, monkeypatch, mode
):
    monkeypatch.setenv("FAKE_ADB_MODE", mode)
    result = benchmarking.benchmark_adb(*phone_files, num_runs=20)
    assert result.median_ms == result.p5_ms == result.p95_ms == pytest.approx(14.1541)
    assert result.mean_ms == pytest.approx(14.1541)
    assert result.runs == 20
    assert "average" in result.note
    assert "note (snv2_int8.tflite" in benchmarking.format_table([result])


def test_benchmark_adb_no_device(fake_adb, phone_files, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_MODE", "nodevice")
    with pytest.raises(benchmarking.BenchmarkError) as info:
        benchmarking.benchmark_adb(*phone_files, serial="R58M")
    message = str(info.value)
    assert (
        "`adb -s R58M shell mkdir -p /data/local/tmp/keras_shufflenet` failed"
        in message
    )
    assert "no devices/emulators found" in message and "adb devices" in message
    assert len(fake_adb()) == 1  # stops at the first failure


def test_benchmark_adb_input_errors(tmp_path, phone_files):
    model, binary = phone_files
    with pytest.raises(FileNotFoundError, match="benchmark_binary="):
        benchmarking.benchmark_adb(model, tmp_path / "nope")
    with pytest.raises(
        benchmarking.BenchmarkError, match="Could not run `.*no-such-adb"
    ):
        benchmarking.benchmark_adb(model, binary, adb=str(tmp_path / "no-such-adb"))


def test_parse_benchmark_model_output_errors_and_formats():
    with pytest.raises(benchmarking.BenchmarkError, match="Failed to mmap model"):
        benchmarking.parse_benchmark_model_output(
            "INFO: STARTING!\nERROR: Failed to mmap model /data/local/tmp/x.tflite\n"
        )
    # No log prefix, big numbers in C++ stream notation.
    parsed = benchmarking.parse_benchmark_model_output(
        "count=10 first=1.2e+06 curr=1.1e+06 min=1e+06 max=1.3e+06 avg=1.15e+06 "
        "std=1000 p5=1.01e+06 median=1.14e+06 p95=1.29e+06\n"
        "Inference timings in us: Init: 5685, First inference: 1.2e+06, "
        "Warmup (avg): 1.2e+06, Inference (avg): 1.15e+06\n"
    )
    assert parsed["median_ms"] == pytest.approx(1140)
    assert parsed["p5_ms"] == pytest.approx(1010) and parsed["runs"] == 10


# ------------------------------------------------------------------ CLI


def test_cli_benchmark_local(tmp_path, tiny_tflite):
    json_out = tmp_path / "bench.json"
    result = run_cli(
        tmp_path, "benchmark", tiny_tflite["float.tflite"], tiny_tflite["int8.tflite"],
        "--threads", "1", "2", "--runs", "5", "--warmup", "1", "--json-out", json_out,
        "--runtime", "interpreter", "compiled",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("model") and len(lines) == 10
    assert [line.split()[:4] for line in lines[2:]] == [
        [model, runtime, "cpu", threads]
        for model in ("tiny_float.tflite", "tiny_int8.tflite") for threads in ("1", "2")
        for runtime in ("interpreter", "compiled")
    ]  # fmt: skip
    saved = json.loads(json_out.read_text())
    assert [r["threads"] for r in saved] == [1, 1, 2, 2] * 2 and saved[0]["median_ms"] > 0
    assert [r["backend"] for r in saved] == ["interpreter", "compiled"] * 4
    # The default runtime: compiled (litert-benchmark).
    result = run_cli(tmp_path, "benchmark", tiny_tflite["int8.tflite"], "--runs", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[:3] == ["tiny_int8.tflite", "compiled", "cpu"]


def test_cli_benchmark_adb(tmp_path, fake_adb, phone_files):
    model, binary = phone_files
    result = run_cli(
        tmp_path, "benchmark", model, "--adb", "--benchmark-binary", binary,
        "--serial", "emulator-5554", "--gpu", "--op-profiling", "--threads", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[2].split()
    assert row == ["snv2_int8.tflite", "adb", "4", "1.45", "14.10", "14.00", "14.52", "-"]
    assert "Operator-wise Profiling Info" in result.stdout
    run = fake_adb()[-1]
    assert run[:4] == ["-s", "emulator-5554", "shell", DEVICE_DIR + "/benchmark_model"]
    assert "--use_gpu=true" in run and "--enable_op_profiling=true" in run


def test_cli_benchmark_errors(tmp_path, fake_adb, phone_files, monkeypatch, capsys):
    from keras_shufflenet import cli

    model, binary = phone_files
    cases = [  # in this process: the same `main` the console script runs
        (["benchmark", str(tmp_path / "missing.tflite")], "missing.tflite"),
        (["benchmark", str(model), "--gpu"], "--gpu only apply with --adb"),
        (["benchmark", str(model), "--adb"], "--adb needs --benchmark-binary"),
        (["benchmark", str(model), "--runtime", "jit"], "`runtime` must be one of"),
        (["benchmark", str(model), "--accelerator", "gpu", "--runtime", "interpreter"],
         "the GPU accelerator takes --runtime compiled"),
        (["benchmark", str(model), "--adb", "--benchmark-binary", str(binary), "--runtime",
          "interpreter"], "--runtime applies to this machine"),
    ]
    for args, expected in cases:
        assert cli.main(args) == 2, args
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and expected in error, (args, error)
        assert "\n" not in error

    monkeypatch.setenv("FAKE_ADB_MODE", "nodevice")
    result = run_cli(
        tmp_path, "benchmark", model, "--adb", "--benchmark-binary", binary
    )
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: `adb shell mkdir -p ") and "no devices" in error
    assert "Traceback" not in result.stderr


def test_absl_benchmark_program(tmp_path, fake_adb, phone_files):
    model, binary = phone_files
    json_out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "tflite.benchmark", f"--models={model}",
            "--threads=1,4", "--adb", f"--benchmark_binary={binary}", "--noxnnpack",
            f"--json_out={json_out}",
        ],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line.split()[2] for line in result.stdout.splitlines()[2:]] == ["1", "4"]
    assert sum("--use_xnnpack=false" in call for call in fake_adb()) == 2
    assert [r["backend"] for r in json.loads(json_out.read_text())] == ["adb", "adb"]
