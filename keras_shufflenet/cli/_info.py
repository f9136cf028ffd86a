"""`keras-shufflenet info`: params, MACs and published accuracy of every variant."""

INFO_FORMAT = "{:<22} {:>11} {:>10} {:>7} {:>12}"


def add_parser(commands):
    p = commands.add_parser("info", help="params, MACs and top-1 of every variant")
    p.add_argument("--model", choices=("v1", "v2", "all"), default="all", help="default: all")
    p.set_defaults(run=run)


def _all_specs(family):
    from keras_shufflenet import models

    v2 = [models.v2_spec(alpha) for alpha in models.V2_ALPHAS]
    v1 = [models.v1_spec(g, a) for g in models.V1_GROUPS for a in models.V1_ALPHAS]
    return {"v1": v1, "v2": v2, "all": v2 + v1}[family]


def _row(spec):
    import keras

    from keras_shufflenet import models, weights
    from keras_shufflenet.models import _complexity

    keras.backend.clear_session()
    model = models.build_model(spec, weights=None, input_shape=(224, 224, 3))
    top1 = size = "-"
    try:
        entry = weights.get_entry(spec)
        top1, size = f"{entry.top1:.2f}", f"{entry.resize}/{entry.crop}"
    except ValueError:
        pass
    return (
        spec.default_name,
        f"{_complexity.count_params(model):,}",
        f"{_complexity.count_macs(model) / 1e6:.1f}",
        top1,
        size,
    )


def run(args):
    """Prints params, MACs and published accuracy of every variant."""
    print(INFO_FORMAT.format("model", "params", "MACs (M)", "top-1", "resize/crop"))
    for spec in _all_specs(args.model):
        print(INFO_FORMAT.format(*_row(spec)), flush=True)
