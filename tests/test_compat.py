"""`keras_shufflenet._compat`: each private internal still exists and still
means what the package relies on; a missing one fails loudly."""

import keras
import numpy as np
import pytest

from keras_shufflenet import _compat


def test_a_missing_internal_names_itself_and_the_installed_versions(monkeypatch):
    from keras.src.backend.tensorflow import nn as backend_nn

    monkeypatch.delattr(backend_nn, "conv")
    with pytest.raises(_compat.InternalsChanged) as info:
        with _compat.grouped_convolutions_as_tf_ops():
            pass
    message = str(info.value)
    assert "keras.src.backend.tensorflow.nn.conv" in message
    assert f"keras {keras.__version__}" in message and "Checked on keras 3.10" in message


def test_grouped_convolutions_trace_as_one_tensorflow_op():
    import tensorflow as tf
    from keras.src.backend.tensorflow import nn as backend_nn

    layer = keras.layers.Conv2D(6, 1, groups=3)
    layer.build((1, 4, 4, 6))
    x = tf.random.normal((1, 4, 4, 6))
    expected = layer(x)

    def op_types():
        graph = tf.function(lambda t: layer(t)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    original = backend_nn.conv
    with _compat.grouped_convolutions_as_tf_ops():
        assert "Conv2D" in op_types()  # the plain grouped op, not an XLA call
        np.testing.assert_allclose(layer(x), expected, atol=1e-6)
    assert backend_nn.conv is original
    assert "Conv2D" not in op_types()  # Keras' own path again


def test_set_initial_epoch_makes_fit_start_there():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            _compat.set_initial_epoch(self.model, 2)

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    x = np.zeros((4, 2), "float32")
    model.fit(x, x[:, :1], epochs=4, verbose=0, callbacks=[Resume()])
    assert seen == [2, 3]


def test_backup_and_restore_internals(tmp_path):
    _compat.check_backup_and_restore(keras.callbacks.BackupAndRestore(str(tmp_path)))
    with pytest.raises(_compat.InternalsChanged, match="_load_model"):
        _compat.check_backup_and_restore(keras.callbacks.Callback())


def test_build_before_fit_builds_the_optimizer_once():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = np.zeros((1, 2), "float32"), np.zeros((1, 3), "float32")
    _compat.build_before_fit(model, data_batch=(x, y))
    assert model.optimizer.built
    variables = list(model.optimizer.variables)
    model.fit(x, y, epochs=1, verbose=0)
    assert list(model.optimizer.variables) == variables


def test_scalar_logs_are_averaged_across_workers_once():
    from keras.src.backend.tensorflow import trainer

    _compat.average_scalar_logs_across_workers()
    patched = trainer.reduce_per_replica
    assert patched._keras_shufflenet_patch
    _compat.average_scalar_logs_across_workers()
    assert trainer.reduce_per_replica is patched


def test_tfmot_internals_on_a_shufflenet_v1_downsampling_concatenation():
    from keras_shufflenet.quantization._imports import tf_keras, tfmot

    # As in ShuffleNet V1's stride-2 unit: concat(conv -> BN -> ReLU, pooled shortcut).
    inputs = tf_keras.Input((4, 4, 3))
    left = tf_keras.layers.Conv2D(2, 1, name="left")(inputs)
    left = tf_keras.layers.BatchNormalization(name="left_bn")(left)
    left = tf_keras.layers.ReLU(name="left_relu")(left)
    right = tf_keras.layers.AveragePooling2D(1, name="right")(inputs)
    outputs = tf_keras.layers.Concatenate(name="concat")([left, right])
    model = tf_keras.Model(inputs, outputs)
    assert _compat.inbound_layer_names(model.get_layer("concat")) == ["left_relu", "right"]

    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    with tfmot.quantization.keras.quantize_scope(), _compat.tfmot_inputs_in_call_order():
        qat = tfmot.quantization.keras.quantize_apply(annotated)
    concat = next(layer for layer in qat.layers if "concat" in layer.name)
    feeding = _compat.inbound_layer_names(concat)
    assert [name.removeprefix("quant_") for name in feeding] == ["left_relu", "right"]

    wrapper = next(layer for layer in qat.layers if layer.name == "quant_left")
    (weight, quantizer, variables), *_ = _compat.weight_quantizers(wrapper)
    assert weight.name.endswith("kernel:0") and {"min_var", "max_var"} <= set(variables)
    keys = [key for layer in qat.layers for key, _ in _compat.activation_range_vars(layer)]
    assert "input" in keys and "quant_concat" not in keys
    assert isinstance(qat.layers[1], _compat.quantize_layer_class())


def test_tflite_schema_reads_and_writes_a_model():
    import flatbuffers
    import tensorflow as tf

    schema = _compat.tflite_schema()
    model = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda x: x + 1.0).get_concrete_function(tf.TensorSpec((1, 2)))]
    ).convert()
    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    builder = flatbuffers.Builder(1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    again = schema.Model.GetRootAs(bytes(builder.Output()), 0)
    assert again.Subgraphs(0).OperatorsLength() == 1 and schema.BuiltinOperator.ADD == 0


def test_interpreter_nodes_list_the_ops_then_the_delegate_partitions(tiny_tflite):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tiny_tflite["float.tflite"]), num_threads=1)
    interpreter.allocate_tensors()
    nodes = _compat.interpreter_nodes(interpreter)
    assert {"index", "op_name", "inputs", "outputs"} <= set(nodes[0])
    assert [node["op_name"] for node in nodes].count("DELEGATE") == 1  # XNNPACK, last
    assert nodes[-1]["op_name"] == "DELEGATE" and nodes[0]["op_name"] == "REVERSE_V2"


def test_tflite_flatbuffer_modules_read_and_write_a_model(tmp_path):
    import tensorflow as tf

    utils, schema = _compat.tflite_flatbuffer_modules()
    inputs = keras.Input((4,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    read = utils.read_model_from_bytearray(bytearray(flatbuffer))
    code = read.operatorCodes[read.subgraphs[0].operators[0].opcodeIndex]
    assert max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.FULLY_CONNECTED
    assert utils.read_model_from_bytearray(utils.convert_object_to_bytearray(read)).subgraphs[0].tensors
