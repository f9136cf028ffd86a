"""Quantization-aware fine-tuning shared by `training.qat` and `training.finetune`.

    qat_model = fine_tune(float_model, train_data, val_data, engine="keras", epochs=1,
                          steps=100, learning_rate=1e-3, label_smoothing=0.1,
                          calibration=calibration_images(train_data, 256))

The float softmax model becomes a QAT model through
`keras_shufflenet.quantization.quantize_model` (`engine="keras"`: a Keras 3
model, any backend; `"tfmot"`: tf_keras + tensorflow-model-optimization),
its ranges first set from `calibration` images, and is fine-tuned with SGD
(momentum 0.9, cosine-decayed learning rate, label smoothing) on one-hot
labels, reporting top-1 as `top1`.
"""

def training_api(engine):
    """The Keras that trains a QAT model of `engine`: Keras 3, or tf_keras."""
    if engine == "tfmot":
        from keras_shufflenet.quantization import tf_keras

        return tf_keras
    import keras

    return keras


def calibration_images(dataset, count):
    """The first `count` images of `dataset` (batches of `(images, labels)`)
    as one array, or `None` for 0."""
    import numpy as np

    if not count:
        return None
    batches, found = [], 0
    for images, _ in dataset:
        batches.append(np.asarray(images))
        found += len(batches[-1])
        if found >= count:
            break
    return np.concatenate(batches)[:count]


def fine_tune(model, train_data, val_data, *, engine, epochs, steps, learning_rate,
              label_smoothing, calibration=None, progress=1):
    """The QAT model of `model` (`engine`), fine-tuned; see the module docstring."""
    from keras_shufflenet.quantization import quantize_model

    api = training_api(engine)
    qat_model = quantize_model(model, representative_data=calibration, engine=engine)
    schedule = api.optimizers.schedules.CosineDecay(learning_rate, max(epochs * steps, 1))
    qat_model.compile(
        optimizer=api.optimizers.SGD(schedule, momentum=0.9),
        loss=api.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[api.metrics.CategoricalAccuracy(name="top1")],
    )
    qat_model.fit(train_data, epochs=epochs, steps_per_epoch=steps, validation_data=val_data,
                  verbose=progress)
    return qat_model
