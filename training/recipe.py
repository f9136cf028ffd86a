"""The training recipe of both ShuffleNet papers, as Keras 3 objects.

Defaults: SGD with momentum 0.9, learning rate 0.5 x batch / 1024 decaying
linearly to 0 per step, weight decay 4e-5 on conv/dense kernels only, label
smoothing 0.1, 240 epochs (300k iterations of batch 1024). Sources: the V1
paper (Zhang et al., 2018, section 4: weight decay 4e-5, learning rate
decaying linearly from 0.5 to 0, batch 1024, 3 x 10^5 iterations; the V2
paper, Ma et al., 2018, trains as V1 does) and Megvii's reference code
(github.com/megvii-model/ShuffleNet-Series, `train.py`: label smoothing 0.1,
weight decay on parameters of more than one dimension only).

Weight decay is the papers' *coupled* L2 decay: Megvii's code passes
`weight_decay=4e-5` to PyTorch's SGD for the parameters with more than one
dimension (convolution, depthwise and dense kernels; no BatchNorm
parameters, no biases), which adds `4e-5 * w` to their gradients before the
momentum. We get exactly that by adding `(4e-5 / 2) * sum(w ** 2)` to the loss
for those kernels (`apply_weight_decay` sets an L2 regularizer on the
variables). Keras' `SGD(weight_decay=...)` is something else: a decoupled
`w -= lr * wd * w` outside the momentum (about 10x weaker at momentum 0.9).
"""

import dataclasses
import math

import keras
from keras import ops

TOP_K = 5  # top-5 accuracy, reported where there are more classes

SCHEDULES = ("linear", "cosine", "constant")
OPTIMIZERS = ("sgd", "adam")
REFERENCE_BATCH = 1024


@dataclasses.dataclass
class Recipe:
    """Optimizer, schedule and loss settings. Defaults are the papers'."""

    base_learning_rate: float = 0.5  # at a batch of 1024, scaled linearly with the batch
    batch_size: int = 1024  # global batch
    epochs: int = 240
    schedule: str = "linear"
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    ema_decay: float = 0.0  # e.g. 0.9999; 0 turns EMA off
    optimizer: str = "sgd"  # the papers'; "adam" (beta_1 = momentum) converges faster on short runs

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}. Received: schedule={self.schedule!r}"
            )
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={self.ema_decay}")

    @property
    def learning_rate(self):
        """Peak learning rate: `base_learning_rate * batch_size / 1024`."""
        return self.base_learning_rate * self.batch_size / REFERENCE_BATCH


@keras.saving.register_keras_serializable(package="keras_shufflenet_training")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then `linear`
    (to 0 at `total_steps`, as Megvii's `LambdaLR(1 - step / total)`),
    `cosine` (to 0) or `constant` per step."""

    def __init__(self, peak, total_steps, warmup_steps=0, decay="linear"):
        if decay not in SCHEDULES:
            raise ValueError(f"`decay` must be one of {SCHEDULES}. Received: decay={decay!r}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "linear":
            decayed = self.peak * (1.0 - progress)
        elif self.decay == "cosine":
            decayed = self.peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            decayed = self.peak + 0.0 * progress
        if self.warmup_steps == 0:
            return decayed
        return ops.where(step < self.warmup_steps, self.peak * (step + 1.0) / warmup, decayed)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
        }


def learning_rate_schedule(recipe, steps_per_epoch):
    """The per-step schedule of `recipe` for `steps_per_epoch` steps an epoch."""
    return WarmupDecay(
        recipe.learning_rate,
        total_steps=recipe.epochs * steps_per_epoch,
        warmup_steps=round(recipe.warmup_epochs * steps_per_epoch),
        decay=recipe.schedule,
    )


def decayed_variables(model):
    """The trainable variables with more than one dimension: conv, depthwise
    and dense kernels (as Megvii's `get_parameters`)."""
    return [v for v in model.trainable_variables if len(v.shape) > 1]


def apply_weight_decay(model, weight_decay):
    """Adds `weight_decay / 2 * ||w||^2` to the loss for each kernel (PyTorch's
    coupled `weight_decay`); returns the variables it applies to."""
    variables = decayed_variables(model)
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    for variable in variables:
        variable.regularizer = regularizer
    return variables


def make_optimizer(recipe, steps_per_epoch):
    """SGD with momentum (or Adam) on the recipe's schedule (EMA of the
    weights if asked)."""
    common = dict(
        learning_rate=learning_rate_schedule(recipe, steps_per_epoch),
        use_ema=recipe.ema_decay > 0,
        ema_momentum=recipe.ema_decay or 0.99,
    )
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(beta_1=recipe.momentum, **common)
    return keras.optimizers.SGD(momentum=recipe.momentum, nesterov=recipe.nesterov, **common)


def make_loss(recipe):
    """Cross-entropy on logits and one-hot labels, with label smoothing."""
    return keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=recipe.label_smoothing
    )


def make_metrics(num_classes):
    """Top-1 accuracy, and top-5 where there are more than 5 classes (with
    5 or fewer it is always 1)."""
    metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
    if num_classes > TOP_K:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=TOP_K, name="top5"))
    return metrics


def resolve_jit_compile(jit_compile):
    """`"auto"`: XLA on GPUs and TPUs only. On CPUs XLA made training of
    ShuffleNetV2 1.0x about 7x slower (benchmarks/training_throughput.py)."""
    if jit_compile != "auto":
        return bool(jit_compile)
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def compile_model(model, recipe, steps_per_epoch, num_classes, jit_compile="auto"):
    """Applies weight decay and compiles `model` (logits output) with the recipe.
    Call inside the distribution strategy's scope."""
    jit_compile = resolve_jit_compile(jit_compile)
    apply_weight_decay(model, recipe.weight_decay)
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch),
        loss=make_loss(recipe),
        metrics=make_metrics(num_classes),
        jit_compile=jit_compile,
    )
    return model


__all__ = [
    "Recipe",
    "TOP_K",
    "WarmupDecay",
    "apply_weight_decay",
    "compile_model",
    "decayed_variables",
    "learning_rate_schedule",
    "make_loss",
    "make_metrics",
    "make_optimizer",
    "resolve_jit_compile",
]
