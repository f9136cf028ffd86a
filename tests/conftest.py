import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

# torchvision pulls in triton, whose LLVM crashes the process when it loads
# after TensorFlow's; loading it first is safe.
try:
    import torchvision  # noqa: E402, F401
except ImportError:
    pass


@pytest.fixture(autouse=True)
def isolated_keras_home(tmp_path, monkeypatch):
    """Every test gets its own empty Keras cache and no local weights folder."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KERAS_SHUFFLENET_WEIGHTS_DIR", raising=False)


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """A float and a full-int8 `.tflite` of a random 64x64, 2-class ShuffleNetV2
    0.5x, and its `.keras`, made once per session."""
    folder = tmp_path_factory.getbasetemp() / "tiny_tflite"
    paths = {
        k: folder / f"tiny_{k}" for k in ("float.tflite", "int8.tflite", "model.keras")
    }
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_shufflenet import ShuffleNetV2

    folder.mkdir(exist_ok=True)
    keras.utils.set_random_seed(0)
    model = ShuffleNetV2(alpha=0.5, weights=None, input_shape=(64, 64, 3), classes=2)
    # Random weights leave the logits nearly equal (about 1e-6 apart); batch-norm
    # statistics taken from one batch give activations, and logits, of order 1.
    batch_norms = [
        l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)
    ]
    for layer in batch_norms:
        layer.momentum = 0.0
    model(np.random.default_rng(1).uniform(0, 255, (16, 64, 64, 3)), training=True)
    for layer in batch_norms:
        layer.momentum = 0.99
    model.save(paths["model.keras"])
    signature = [tf.TensorSpec([1, 64, 64, 3], tf.float32)]
    model.export(
        paths["float.tflite"], format="litert", input_signature=signature, verbose=False
    )

    def representative_data():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")]

    model.export(
        paths["int8.tflite"],
        format="litert",
        input_signature=signature,
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_data,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        inference_input_type=tf.int8,
        inference_output_type=tf.int8,
    )
    return paths
