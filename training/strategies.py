"""`tf.distribute` strategies by name, for the training programs.

* `default`: one device (the first GPU, else the CPU).
* `mirrored`: synchronous data parallelism over the local GPUs (or the
  `devices` given, e.g. logical CPUs made by `split_cpu`); gradients are
  summed over replicas (the loss of each replica is scaled by 1/replicas).
* `multi_worker`: the same across machines; every worker runs the same
  program with its own `TF_CONFIG` (`{"cluster": {"worker": [...]},
  "task": {"type": "worker", "index": i}}`); worker 0 is the chief.
* `tpu`: a Cloud TPU found by `TPUClusterResolver(tpu=...)`.

Make the strategy first thing in the program: multi-worker needs to start
before any other TensorFlow op.
"""

import json
import os

import tensorflow as tf

from keras_shufflenet import distribute

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_cpu(count):
    """Splits the CPU into `count` logical devices (before TensorFlow starts);
    returns their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def make_strategy(name="default", devices=None, tpu=None):
    """The strategy called `name` (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices or None)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy='multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set. Received: TF_CONFIG=None"
            )
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO
        )
        distribute.average_logs_across_workers()
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return _tpu_strategy(tpu)


def _tpu_strategy(tpu):
    """A `TPUStrategy` on the TPU `tpu` names (`""`: the local or the only one);
    a ValueError that says so when none is found."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise ValueError(
            "strategy='tpu' found no TPU: name one with --tpu (a TPU name or grpc:// "
            f"address) on a machine that reaches it ({reason}). Received: tpu={tpu!r}"
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def task(strategy):
    """`(task_type, task_id, is_chief)` of this process in its cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None) or 0
    if not task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return None, 0, True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster
    )
    return task_type, task_id, is_chief


__all__ = ["STRATEGIES", "make_strategy", "split_cpu", "task"]
