"""Quantization-aware training of ShuffleNets: Keras 3 (any backend) or tfmot.

`quantize_model(model, representative_data, engine="keras")` (the default)
returns a plain Keras 3 model with fake quantization where the full-int8
export quantizes (`_keras_qat`, `_keras_layers`); it trains with `fit` on
TensorFlow, JAX and PyTorch, saves as `.keras`, and `export_tflite(qat_model,
path, "int8")` writes the same phone graph as post-training quantization with
the ranges it learnt::

    qat_model = quantize_model(model, representative_data=images)
    qat_model.compile(...); qat_model.fit(...)   # any Keras 3 backend
    qat_model.save("qat.keras")

`engine="tfmot"` keeps tensorflow-model-optimization's path for tf_keras
users. tfmot works on tf_keras (Keras 2) models, so `quantize_model` rebuilds the
Keras 3 model in tf_keras, layer for layer and with the same names, copies the
float weights, and applies tfmot's default 8-bit scheme::

    model = keras_shufflenet.ShuffleNetV2(alpha=1.0, input_shape=(224, 224, 3))
    qat_model = quantize_model(model, representative_data=images, engine="tfmot")
    qat_model.compile(...); qat_model.fit(...)
    qat_model.save("qat.h5")                   # load back inside quantize_scope()

The twin has the layers and names of the original, with one change of type:
`preprocessing` (a `Rescaling`) becomes an equivalent frozen 1x1 convolution,
which converts to one integer op (see `_twin`). How each layer is quantized is
described in `_qat` and `_configs`.

This subpackage is the only place that imports tf_keras and tfmot, and only
when its tfmot path is used, or `tf_keras` is asked for: `import
keras_shufflenet` needs neither. `tf_keras` is the tf_keras module that QAT
models are built with (compile and fit them with its optimizers and losses),
imported with `TF_USE_LEGACY_KERAS` left as it was, so Keras 3 code in the
same process sees no change::

    from keras_shufflenet.quantization import tf_keras
    qat_model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
"""


ENGINES = ("keras", "tfmot")


def quantize_model(model, representative_data=None, *, engine="keras", quantize=True):
    """A ShuffleNet of this package, ready for quantization-aware training.

    Args:
        model: A Keras 3 `ShuffleNetV1` or `ShuffleNetV2` built by this
            package, with any `include_top`, `pooling`, `classes`,
            `classifier_activation` (`None` or `"softmax"` for
            `engine="keras"`; a built-in one for `"tfmot"`),
            `include_preprocessing` and input shape.
        representative_data: Images that set the activation ranges before
            training, as post-training quantization would (min and max of
            each quantized tensor of the float model, widened to hold 0);
            as for `export_tflite`: an array `(N, H, W, C)` of float pixels in
            [0, 255], a `tf.data` dataset of such images, or a folder of
            image files (resized and centre-cropped to the input size). A
            few hundred is typical; at least 10. Without it, ranges start at
            [-6, 6] ([0, 6] after a ReLU). Defaults to `None`.
        engine: `"keras"`: a plain Keras 3 model (`_keras_qat`: fake
            quantization where the int8 export quantizes, BatchNorms folded,
            ranges trainable) that trains with `fit` on the TensorFlow, JAX
            and PyTorch backends and saves as `.keras`. `"tfmot"`: the
            tf_keras model of tensorflow-model-optimization (`_qat`), for
            tf_keras users. Defaults to `"keras"`.
        quantize: `engine="tfmot"` only: `False` returns the float tf_keras
            twin (same weights, same outputs). Defaults to `True`.

    Returns:
        The QAT model, whose layer names follow `model`'s; `export_tflite(
        qat_model, path, "int8")` writes its full-int8 file with the ranges
        it learnt.

    Raises:
        ValueError: if `model` is not a ShuffleNet of this package, or an
            argument is not one of those above.
    """
    from keras_shufflenet.export._calibration import representative_images

    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}. Received: engine={engine!r}")
    if engine == "keras":
        from keras_shufflenet.quantization import _keras_qat

        if not quantize:
            raise ValueError(
                '`quantize=False` (the float tf_keras twin) needs engine="tfmot". '
                f"Received: quantize={quantize!r}, engine={engine!r}"
            )
        _keras_qat.check_model(model)  # bad models fail before any data is read
        images = None
        if representative_data is not None:
            images = representative_images(model, representative_data)
        return _keras_qat.quantize(model, images)

    from keras_shufflenet.quantization import _qat, _twin

    images = None
    if quantize and representative_data is not None:  # bad data fails before any work
        images = representative_images(model, representative_data)
    tf_keras_model = _twin.build_twin(model)
    if not quantize:
        return tf_keras_model
    qat_model = _qat.quantize(tf_keras_model)
    if images is not None:
        _qat.calibrate(qat_model, tf_keras_model, images)
    return qat_model


def quantize_scope():
    """A scope in which saved QAT models of this package load (tf_keras)::

        with quantize_scope():
            qat_model = tf_keras.models.load_model(path)
    """
    from keras_shufflenet.quantization import _qat

    return _qat.quantize_scope()


def __getattr__(name):
    if name == "tf_keras":  # on first use: importing it is slow
        from keras_shufflenet.quantization import _imports

        return _imports.tf_keras
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENGINES", "quantize_model", "quantize_scope", "tf_keras"]
