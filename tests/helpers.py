"""What several test files share: running the package's programs as a user
would (in a subprocess), models with random BatchNorm statistics (and the
tiny model that `conftest.tiny_tflite` exports), hostile input."""

import io
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run_python(cwd, *args, env=None):
    """Runs `python ARGS` in `cwd` with an empty Keras cache and quiet TensorFlow."""
    env = {
        **os.environ,
        **(env or {}),
        "KERAS_HOME": str(Path(cwd) / "keras_home"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def run_cli(cwd, *args, env=None):
    """Runs `python -m keras_shufflenet.cli ARGS`, as the console script would."""
    return run_python(cwd, "-m", "keras_shufflenet.cli", *args, env=env)


def hostile_checkpoint(marker):
    """The bytes of a torch zip checkpoint whose pickle runs `touch marker`
    when unpickled naively (as `torch.load(weights_only=False)` would)."""

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1, "x": Payload()}, 2))
        archive.writestr("archive/byteorder", "little")
    return buffer.getvalue()


def randomize_batchnorm(model, seed=0, weights=False, data=None):
    """Seeded random BatchNorm parameters and statistics (and optionally weights),
    so that every layer shows in the outputs: the suite's one randomiser of
    Keras models (`reference.randomized` does the same for the torch models).

    Every BatchNormalization gets a random gamma in [0.5, 1.5], beta in
    [-0.3, 0.3], moving mean in [-0.3, 0.3] and moving variance in [0.5, 2.0]
    (as `reference.randomized`), so that mean and variance, gamma and beta are
    not interchangeable. With `weights=True`, convolution and dense kernels are
    uniform in +-sqrt(3 / fan_in) (fan_in per output channel: kh * kw for a
    depthwise kernel) and biases in [-0.1, 0.1].

    Random statistics do not match the activations, which then shrink layer
    by layer: the logits hardly depend on the input. With `data` (a batch of
    model inputs), each moving mean and variance is instead that of the
    layer's input on `data` (computed in order, after the random gamma and
    beta of the layers before), shifted by up to 0.3 standard deviations and
    scaled by a random factor in [0.5, 2.0]: activations stay of order 1
    and the top-1 class changes from image to image.

    Returns `model`, changed in place.
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    norms = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            values = {
                "gamma": rng.uniform(0.5, 1.5, shape),
                "beta": rng.uniform(-0.3, 0.3, shape),
                "moving_mean": rng.uniform(-0.3, 0.3, shape),
                "moving_variance": rng.uniform(0.5, 2.0, shape),
            }
            for name, value in values.items():
                variable = getattr(layer, name, None)
                if variable is not None:
                    variable.assign(value.astype(variable.dtype))
            norms.append(layer)
        elif weights and layer.weights:
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            new = []
            for w in layer.get_weights():
                if w.ndim > 1:
                    fan_in = np.prod(w.shape[:2] if depthwise else w.shape[:-1])
                    bound = (3.0 / fan_in) ** 0.5
                else:
                    bound = 0.1
                new.append(rng.uniform(-bound, bound, w.shape).astype(w.dtype))
            layer.set_weights(new)
    if data is not None and norms:
        # Inference with statistics equal to the batch's: one pass in training
        # mode with momentum 0 sets them all, each from its own input.
        momenta = [layer.momentum for layer in norms]
        for layer in norms:
            layer.momentum = 0.0
        model(np.asarray(data, "float32"), training=True)
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
            mean = keras.ops.convert_to_numpy(layer.moving_mean)
            variance = keras.ops.convert_to_numpy(layer.moving_variance)
            shift = rng.uniform(-0.3, 0.3, mean.shape) * np.sqrt(variance)
            layer.moving_mean.assign((mean + shift).astype(mean.dtype))
            layer.moving_variance.assign(
                (variance * rng.uniform(0.5, 2.0, variance.shape)).astype(variance.dtype)
            )
    return model


def tiny_model():
    """The suite's tiny model: a 64x64, 2-class ShuffleNetV2 0.5x (softmax
    head) with seeded random weights and BatchNorm statistics fitted to random
    pixels, so that its outputs are of order 1 and its top class changes from
    image to image. `conftest.tiny_tflite` saves and exports it once per session."""
    import keras
    import numpy as np

    from keras_shufflenet import ShuffleNetV2

    keras.utils.set_random_seed(0)
    model = ShuffleNetV2(alpha=0.5, weights=None, input_shape=(64, 64, 3), classes=2)
    pixels = np.random.default_rng(1).uniform(0, 255, (16, 64, 64, 3)).astype("float32")
    return randomize_batchnorm(model, seed=0, weights=True, data=pixels)


def tflite_outputs(path, inputs):
    """The LiteRT interpreter's output (one thread) for each of `inputs`, stacked."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for x in inputs:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).copy())
    return np.stack(outputs)


def run_as_user(cwd, *args):
    """Runs `python ARGS` in `cwd` as a user's shell would: without the
    `TF_CPP_MIN_LOG_LEVEL` that `run_python` sets, so that every line a
    library prints reaches the output."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_HOME"] = str(Path(cwd) / "keras_home")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *map(str, args)], check=False, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=900)  # fmt: skip


# A Keras progress bar, once its colours are removed ("12/12 ━━━━ 0s 18ms/image").
PROGRESS_BAR = r"\s*\d+/\d+ ━+ .*"
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def foreign_lines(text, *own):
    """The lines of `text` (split at newlines and carriage returns, colours
    removed) that match none of the regular expressions `own`: what a program
    printed that is not its own."""
    lines = (_COLOURS.sub("", line).rstrip() for line in re.split(r"[\r\n]", text))
    return [line for line in lines if line and not any(re.fullmatch(p, line) for p in own)]
