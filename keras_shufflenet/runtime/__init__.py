"""Running exported models: on LiteRT's CPU and GPU accelerators here (in a
child process), latency here or on a phone over adb, and how a `.tflite`
model's answers compare with its Keras model's."""

from keras_shufflenet.runtime._accelerator import (
    ACCELERATORS,
    AcceleratorError,
    CompiledRun,
    check_accelerator,
    run_compiled,
)
from keras_shufflenet.runtime._benchmark import (
    BenchmarkError,
    BenchmarkResult,
    benchmark_adb,
    benchmark_interpreter,
    benchmark_local,
    check_counts,
    check_model_file,
    format_table,
    parse_benchmark_model_output,
)
from keras_shufflenet.runtime._evaluation import (
    Comparison,
    EvaluationResult,
    ModelScore,
    check_model_files,
    compare_models,
    evaluate_tflite,
    find_images,
    load_class_index,
    tflite_top1,
)

__all__ = [
    "ACCELERATORS",
    "AcceleratorError",
    "CompiledRun",
    "check_accelerator",
    "run_compiled",
    "BenchmarkError",
    "BenchmarkResult",
    "Comparison",
    "EvaluationResult",
    "ModelScore",
    "benchmark_adb",
    "benchmark_interpreter",
    "benchmark_local",
    "check_counts",
    "check_model_file",
    "check_model_files",
    "compare_models",
    "evaluate_tflite",
    "find_images",
    "format_table",
    "load_class_index",
    "parse_benchmark_model_output",
    "tflite_top1",
]
