"""The one place that imports tf_keras and tensorflow-model-optimization
(their private internals are used through `keras_shufflenet._compat` only).

Only the modules of this subpackage that need them import this one, and only
when a function of `keras_shufflenet.quantization` is called, so
`import keras_shufflenet` stays free of both.

Importing tfmot sets `TF_USE_LEGACY_KERAS=1` for the whole process, which
would route a later `tf.keras` to tf_keras. We resolve `tf.keras` first and
put the variable back afterwards, so Keras 3 code in the same process sees
no change.
"""

import os

import tensorflow as tf

_VARIABLE = "TF_USE_LEGACY_KERAS"
_previous = os.environ.get(_VARIABLE)
try:
    # Resolve tf.keras (to Keras 3, unless the user asked for tf_keras)
    # before tfmot flips the variable.
    getattr(tf.keras, "__name__", None)
    import tensorflow_model_optimization as tfmot
    import tf_keras
finally:
    if _previous is None:
        os.environ.pop(_VARIABLE, None)
    else:
        os.environ[_VARIABLE] = _previous

__all__ = ["tf", "tf_keras", "tfmot"]
