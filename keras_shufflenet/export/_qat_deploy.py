"""The deploy graph of a Keras 3 QAT model, with the ranges it learnt.

A QAT model of `keras_shufflenet.quantization` (`engine="keras"`) gives back
its float model (kernels and BatchNorms as learnt, unfolded) and the learnt
range of each float layer output it quantizes (`_keras_qat.deploy_parts`).
The float model becomes the usual deploy graph (`_deploy.deployment_model`:
the same phone graph as post-training quantization), and each of those
layers of the deploy graph (which keeps their names) is followed by a fixed
`FakeQuant` with its range: TFLiteConverter's quantization-aware path then
takes the activation ranges from them, with no representative data, folds the
BatchNorms into the convolutions and quantizes the weights per channel
(symmetric, `max|w| / 127`) as `QuantConv2D` simulated. A softmax head is
split into its logits (quantized with their range) and the softmax (TFLite's
fixed `[0, 255/256]`).
"""

import keras

from keras_shufflenet.export import _deploy, _graph
from keras_shufflenet.export._graph import Replacement
from keras_shufflenet.export._layers import MirrorImage
from keras_shufflenet.quantization import _keras_qat
from keras_shufflenet.quantization._keras_layers import FakeQuant


def is_keras_qat_model(model):
    """Whether `model` is a Keras 3 QAT model of `keras_shufflenet.quantization`."""
    return _keras_qat.is_qat_model(model)


def _fixed(range_, name):
    return FakeQuant(*range_, trainable=False, name=name)


def deployment_model(qat_model, input_shape):
    """The batch-1 deploy graph of `qat_model` with fake quantization at its learnt ranges."""
    float_model, ranges = _keras_qat.deploy_parts(qat_model)
    deployed = _deploy.deployment_model(float_model, input_shape)
    replacements = {}
    names = {layer.name for layer in deployed.layers}
    softmax_head = _keras_qat.HEAD in names and (
        deployed.get_layer(_keras_qat.HEAD).get_config()["activation"] == "softmax"
    )
    if softmax_head:
        head = deployed.get_layer(_keras_qat.HEAD)
        replacements[head.name] = Replacement(
            head.__class__.from_config({**head.get_config(), "activation": None})
        )

    def after(layer, outputs):
        if isinstance(layer, MirrorImage):  # the converter carries no range through it
            outputs = _fixed(ranges[_keras_qat.INPUT], "mirror_quant")(outputs)
        if layer.name in ranges:
            outputs = _fixed(ranges[layer.name], f"{layer.name}_quant")(outputs)
        if softmax_head and layer.name == _keras_qat.HEAD:
            outputs = keras.layers.Softmax(name=_keras_qat.SOFTMAX)(outputs)
            outputs = _fixed(_keras_qat.SOFTMAX_RANGE, f"{_keras_qat.SOFTMAX}_quant")(outputs)
        return outputs

    inputs = keras.Input(batch_shape=deployed.input.shape, name=deployed.input.name)
    first = _fixed(ranges[_keras_qat.INPUT], "input_quant")
    return _graph.rewritten(deployed, inputs, replacements, first=first, after=after)
