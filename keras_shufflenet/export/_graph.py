"""Who reads whom in a functional Keras model (each layer called once)."""

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
