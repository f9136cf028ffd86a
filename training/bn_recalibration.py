"""BatchNorm recalibration: re-estimate the moving statistics after training.

The moving averages a model ends training with were gathered while its
weights still changed (and, with EMA, belong to other weights than the final
averaged ones). Running the final model in training mode over a few hundred
batches with a cumulative average (batch k weighs 1/k, as PyTorch's
`update_bn`) gives statistics of exactly the final weights.
"""

import keras


def batch_norm_layers(model):
    """Every BatchNormalization layer of `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batch_norm_layers(layer)
    return found


def recalibrate(model, dataset, steps=None, verbose=1):
    """Re-estimates every BatchNorm's moving mean and variance on `dataset`
    (batches of `(images, labels)` or of images); returns the batches used."""
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    progress = keras.utils.Progbar(steps, unit_name="batch") if verbose else None
    count = 0
    try:
        for batch in dataset:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = count / (count + 1.0)  # cumulative average
            model(images, training=True)
            count += 1
            if progress is not None:
                progress.update(count)
            if steps is not None and count >= steps:
                break
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return count


__all__ = ["batch_norm_layers", "recalibrate"]
