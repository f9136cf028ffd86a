"""Who reads whom in a functional Keras model (each layer called once), and
the one clone that applies the deploy rewrites' replacements."""

import dataclasses

import keras
from keras import layers


def readers(model):
    """Maps each layer name to the layers that read its output (each layer of
    a ShuffleNet is called once, so its `input` and `output` are its only ones)."""
    producer = {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.output):
            producer[id(tensor)] = layer
    found = {}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            found.setdefault(producer[id(tensor)].name, []).append(layer)
    return found


def producers(readers_by_name):
    """Inverts `readers`: layer name -> the names of the layers it reads."""
    found = {}
    for name, layer_readers in readers_by_name.items():
        for reader in layer_readers:
            found.setdefault(reader.name, []).append(name)
    return found


def first_convolution(layer, readers_by_name, through):
    """The `Conv2D` (not a depthwise one) that reads `layer`'s output through
    a chain of layers of the types `through`, each the only reader of the
    one before; None if the chain branches or meets another layer."""
    while True:
        following = readers_by_name.get(layer.name, [])
        if len(following) != 1:
            return None
        layer = following[0]
        if isinstance(layer, layers.Conv2D):
            return layer
        if not isinstance(layer, through):
            return None


@dataclasses.dataclass(frozen=True)
class Replacement:
    """What the clone of a model puts in place of one of its layers: `layer`
    (None: a copy of the original) with `weights` (None: the original's)."""

    layer: keras.layers.Layer | None = None
    weights: list | None = None

    def then(self, later):
        """This replacement followed by `later`, which wins where it says something."""
        return Replacement(
            later.layer if later.layer is not None else self.layer,
            later.weights if later.weights is not None else self.weights,
        )


def rewritten(model, inputs, replacements, first=None, after=None):
    """A clone of `model` on `inputs` with `replacements` (layer name ->
    `Replacement`) in place of its layers, the layer `first` (if any)
    between `inputs` and the layers that read them, and `after(layer,
    outputs)` (if any) applied to each layer's outputs."""

    def clone(layer):
        replacement = replacements.get(layer.name)
        if replacement is not None and replacement.layer is not None:
            return replacement.layer
        return layer.__class__.from_config(layer.get_config())

    def call(layer, *args, **kwargs):
        if first is not None and args and args[0] is inputs:
            args = (first(inputs), *args[1:])
        outputs = layer(*args, **kwargs)
        return outputs if after is None else after(layer, outputs)

    cloned = keras.models.clone_model(
        model, input_tensors=inputs, clone_function=clone, call_function=call
    )
    for layer in model.layers:
        replacement = replacements.get(layer.name)
        if replacement is not None and replacement.weights is not None:
            weights = replacement.weights
        else:
            weights = layer.get_weights()
        if weights:
            cloned.get_layer(layer.name).set_weights(weights)
    return cloned
