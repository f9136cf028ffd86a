"""Quantization-aware training of ShuffleNets with tensorflow-model-optimization.

tfmot works on tf_keras (Keras 2) models, so `quantize_model` rebuilds the
Keras 3 model in tf_keras, layer for layer and with the same names, copies the
float weights, and applies tfmot's default 8-bit scheme::

    model = keras_shufflenet.ShuffleNetV2(alpha=1.0, input_shape=(224, 224, 3))
    qat_model = quantize_model(model, representative_data=images)  # tf_keras
    qat_model.compile(...); qat_model.fit(...)
    qat_model.save("qat.h5")                   # load back inside quantize_scope()

The twin has the layers and names of the original, with one change of type:
`preprocessing` (a `Rescaling`) becomes an equivalent frozen 1x1 convolution,
which converts to one integer op (see `_twin`). How each layer is quantized is
described in `_qat` and `_configs`.

This subpackage is the only place that imports tf_keras and tfmot, and only
when one of its functions is called, or `tf_keras` is asked for: `import
keras_shufflenet` needs neither. `tf_keras` is the tf_keras module that QAT
models are built with (compile and fit them with its optimizers and losses),
imported with `TF_USE_LEGACY_KERAS` left as it was, so Keras 3 code in the
same process sees no change::

    from keras_shufflenet.quantization import tf_keras
    qat_model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
"""


def quantize_model(model, quantize=True, representative_data=None):
    """Rebuilds a ShuffleNet of this package in tf_keras, ready for QAT.

    Args:
        model: A Keras 3 `ShuffleNetV1` or `ShuffleNetV2` built by this
            package, with any `include_top`, `pooling`, `classes`,
            `classifier_activation` (a built-in one),
            `include_preprocessing` and input shape.
        quantize: Whether to apply quantization-aware training. `False`
            returns the float tf_keras twin (same weights, same outputs).
            Defaults to `True`.
        representative_data: Images that set the activation ranges before
            training, as post-training quantization would (`_qat.calibrate`);
            as for `export_tflite`: an array `(N, H, W, C)` of float pixels in
            [0, 255], a `tf.data` dataset of such images, or a folder of
            image files (resized and centre-cropped to the input size). A
            few hundred is typical; at least 10. Without it, activation
            ranges start at tfmot's [-6, 6] and move towards the data
            slowly (a moving average with decay 0.999). Defaults to `None`.

    Returns:
        A tf_keras functional model: the QAT model (fake quantization at the
        places TFLite quantizes, trainable and compile-able), or the float
        twin. Its layer names are those of `model` (with tfmot's `quant_`
        prefix after QAT).

    Raises:
        ValueError: if `model` is not a ShuffleNet of this package.
    """
    from keras_shufflenet.export._calibration import representative_images
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


__all__ = ["quantize_model", "quantize_scope", "tf_keras"]
