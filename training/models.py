"""The models the programs train, and the files they end with.

Programs train a logits model (`classifier_activation=None`, for a
label-smoothed loss on logits) in whatever dtype policy they run; what they
save is a plain float32 `ShuffleNetV1`/`ShuffleNetV2` with the softmax head,
as `.keras` and `.weights.h5`, which `weights=PATH` loads::

    ks.ShuffleNetV2(alpha=0.5, weights="run/model.weights.h5", classes=8,
                    input_shape=(64, 64, 3))
"""

import contextlib
import os

import keras

from keras_shufflenet import distribute, models, runtime

HEAD = "predictions"


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy inside the block."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build(spec, *, weights=None, classes=1000, image_size=224, logits=True):
    """A ShuffleNet of `spec` for `image_size` x `image_size` RGB input."""
    return models.build_model(
        spec,
        weights=weights,
        classes=classes,
        input_shape=(image_size, image_size, 3),
        classifier_activation=None if logits else "softmax",
    )


def transfer_weights(source, target, skip=(HEAD,)):
    """Copies the weights of every layer of `target` (but `skip`) from the
    layer of the same name in `source`; returns the names copied."""
    copied = []
    for layer in target.layers:
        if layer.name in skip or not layer.weights:
            continue
        layer.set_weights(source.get_layer(layer.name).get_weights())
        copied.append(layer.name)
    return copied


def float32_copy(model, spec, classes, image_size):
    """A float32 softmax model with the weights of `model` (any dtype policy)."""
    with dtype_policy("float32"):
        copy = build(spec, classes=classes, image_size=image_size, logits=False)
    copy.set_weights(model.get_weights())
    return copy


def save(model, out_dir, stem="model", class_names=None):
    """Writes `stem.keras` and `stem.weights.h5` atomically, and the
    `class_names` beside them (`stem.labels.txt`, see
    `keras_shufflenet.runtime.save_class_names`); returns their paths."""
    paths = {
        "keras": os.path.join(out_dir, f"{stem}.keras"),
        "weights": os.path.join(out_dir, f"{stem}.weights.h5"),
    }
    distribute.save_atomically(model.save, paths["keras"])
    distribute.save_atomically(model.save_weights, paths["weights"])
    if class_names is not None:
        paths["labels"] = os.fspath(runtime.save_class_names(paths["keras"], class_names))
    return paths


def evaluate(model, dataset, num_classes):
    """`{"top1": ..., "top5": ...}` of a softmax `model` on `dataset` (top-5
    where there are more than 5 classes)."""
    from training import recipe

    model.compile(loss="categorical_crossentropy", metrics=recipe.make_metrics(num_classes))
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {name: float(results[name]) for name in ("top1", "top5") if name in results}


__all__ = ["build", "dtype_policy", "evaluate", "float32_copy", "save", "transfer_weights"]
