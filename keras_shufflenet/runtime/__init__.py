"""Running exported models: on LiteRT's CPU and GPU accelerators here (in a
child process), latency here or on a phone over adb, and how exported models'
answers compare with their Keras model's; the class names saved with a
fine-tuned model."""

from keras_shufflenet.runtime._accelerator import (
    ACCELERATORS,
    AcceleratorError,
    CompiledRun,
    run_compiled,
)
from keras_shufflenet.runtime._benchmark import (
    BenchmarkError,
    BenchmarkResult,
    benchmark_adb,
    benchmark_interpreter,
    benchmark_local,
)
from keras_shufflenet._class_names import save_class_names, saved_class_names
from keras_shufflenet.runtime._evaluation import (
    Comparison,
    ModelScore,
    compare_models,
    load_class_index,
    tflite_top1,
)

__all__ = [
    "ACCELERATORS",
    "AcceleratorError",
    "BenchmarkError",
    "BenchmarkResult",
    "Comparison",
    "CompiledRun",
    "ModelScore",
    "benchmark_adb",
    "benchmark_interpreter",
    "benchmark_local",
    "compare_models",
    "load_class_index",
    "run_compiled",
    "save_class_names",
    "saved_class_names",
    "tflite_top1",
]
