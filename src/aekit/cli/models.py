"""``aekit train --model NAME``: the model names, the options that set each piece, and
the estimator they build.

``dense``, ``conv``, ``vae`` and ``beta-vae`` choose the model; ``denoising``,
``sparse`` and ``contractive`` are presets that switch the matching piece on for a
dense model. The piece options (``--noise``, ``--sparsity``, ``--contractive-weight``
and the others) work with every model they apply to, so ``--model conv --noise
masking`` trains a denoising convolutional autoencoder.
"""

from __future__ import annotations

from typing import Any

import click

MODEL_NAMES: tuple[str, ...] = ("dense", "conv", "vae", "beta-vae", "denoising", "sparse", "contractive")
VARIATIONAL_MODELS = frozenset({"vae", "beta-vae"})

# Settings that a preset applies unless the matching option is given.
PRESET_NOISE = "masking"
PRESET_SPARSITY = "l1"
PRESET_CONTRACTIVE_WEIGHT = 1e-3
PRESET_BETA = 4.0

# Estimator parameters that only one kind of model has.
AUTOENCODER_ONLY = ("loss", "latent_activation", "tied_weights", "sparsity", "sparsity_weight", "sparsity_target", "contractive_weight")
VARIATIONAL_ONLY = ("beta", "kl_warmup_epochs", "likelihood")


def _parse_channels(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        channels = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of integers; use for example --channels 32,64."
        ) from None
    if any(width < 1 for width in channels):
        raise click.BadParameter(f"{value!r} has a channel count below 1; every count must be positive.")
    return channels


def model_options(function: Any) -> Any:
    """Add ``--model`` and the options that set each model piece to a click command."""
    options = [
        click.option("--model", "model", type=click.Choice(MODEL_NAMES), default="dense", show_default=True,
                     help="Model: dense, conv (images), vae, beta-vae, or a dense preset: denoising "
                          f"(--noise {PRESET_NOISE}), sparse (--sparsity {PRESET_SPARSITY}), contractive "
                          f"(--contractive-weight {PRESET_CONTRACTIVE_WEIGHT})."),
        click.option("--architecture", type=click.Choice(["dense", "conv"]),
                     help="Backbone of a VAE or a preset (default: dense)."),
        click.option("--channels", callback=_parse_channels, metavar="C1,C2,...",
                     help="Output channels of the convolutions, each halving height and width [default: 32,64]."),
        click.option("--latent-activation", type=click.Choice(["auto", "identity", "sigmoid", "relu", "tanh"]),
                     help="Code layer activation [default: auto: sigmoid for --sparsity kl, relu for l1, else identity]."),
        click.option("--tied-weights", is_flag=True, default=False,
                     help="Dense decoders reuse the encoder's transposed weights."),
        click.option("--noise", type=click.Choice(["none", "gaussian", "masking", "salt-and-pepper"]),
                     help="Input corruption during training, for denoising [default: none]."),
        click.option("--noise-std", type=click.FloatRange(min=0), metavar="FLOAT",
                     help="Standard deviation of gaussian noise, in scaled units [default: 0.1]."),
        click.option("--noise-fraction", type=click.FloatRange(0, 1), metavar="FLOAT",
                     help="Share of values that masking or salt-and-pepper noise corrupts [default: 0.25]."),
        click.option("--sparsity", type=click.Choice(["none", "l1", "kl"]),
                     help="Latent sparsity penalty: l1 on the code, or kl towards --sparsity-target [default: none]."),
        click.option("--sparsity-weight", type=click.FloatRange(min=0), metavar="FLOAT",
                     help="Weight of the sparsity penalty [default: 0.001]."),
        click.option("--sparsity-target", type=click.FloatRange(0, 1, min_open=True, max_open=True), metavar="FLOAT",
                     help="Target mean code activation for --sparsity kl [default: 0.05]."),
        click.option("--contractive-weight", type=click.FloatRange(min=0), metavar="FLOAT",
                     help="Weight of the encoder Jacobian's squared Frobenius norm; 0 turns it off [default: 0]."),
        click.option("--beta", type=click.FloatRange(min=0), metavar="FLOAT",
                     help=f"Weight of a VAE's KL term [default: 1 for vae, {PRESET_BETA:g} for beta-vae]."),
        click.option("--kl-warmup-epochs", type=click.IntRange(min=0), metavar="N",
                     help="Epochs over which a VAE's KL weight rises linearly to --beta [default: 0]."),
        click.option("--likelihood", type=click.Choice(["auto", "bernoulli", "gaussian"]),
                     help="VAE decoder distribution [default: auto: bernoulli for images, gaussian for tables]."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_estimator(ctx: click.Context, params: dict[str, Any], *, verbose: int, **extra: Any) -> Any:
    """Return the unfitted estimator that ``aekit train`` options describe.

    ``params`` contains every option of the command by parameter name. Options the
    user did not give fall back to the estimator's own defaults, or to the preset's.
    ``extra`` holds further estimator parameters, such as ``timeline``.
    """
    from .. import AutoEncoder, VariationalAutoEncoder

    model = params.pop("model")
    given = {name for name in params if _is_given(ctx, name)}
    _reject_foreign_options(model, given)

    settings = {name: value for name, value in params.items() if value is not None}
    for name in set(AUTOENCODER_ONLY + VARIATIONAL_ONLY) - given:
        settings.pop(name, None)
    settings["architecture"] = _architecture(model, settings.get("architecture"))
    _apply_preset(model, settings, given)

    estimator_class = VariationalAutoEncoder if model in VARIATIONAL_MODELS else AutoEncoder
    return estimator_class(verbose=verbose, **extra, **settings)


def _is_given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _reject_foreign_options(model: str, given: set[str]) -> None:
    foreign = VARIATIONAL_ONLY if model not in VARIATIONAL_MODELS else AUTOENCODER_ONLY
    wrong = [name for name in foreign if name in given]
    if not wrong:
        return
    if model in VARIATIONAL_MODELS:
        models = "autoencoders (--model dense, conv, denoising, sparse or contractive)"
    else:
        models = "variational models (--model vae or beta-vae)"
    raise click.UsageError(f"{_option(wrong[0])} applies to {models}, not to --model {model}.")


def _architecture(model: str, requested: str | None) -> str:
    fixed = {"dense": "dense", "conv": "conv"}.get(model)
    if fixed and requested and requested != fixed:
        raise click.UsageError(
            f"--model {model} conflicts with --architecture {requested}; use --model {requested} instead."
        )
    return fixed or requested or "dense"


def _apply_preset(model: str, settings: dict[str, Any], given: set[str]) -> None:
    if model == "denoising":
        settings.setdefault("noise", PRESET_NOISE)
        if settings["noise"] == "none":
            raise click.UsageError("--model denoising needs input noise; drop --noise none or use --model dense.")
    elif model == "sparse":
        settings.setdefault("sparsity", PRESET_SPARSITY)
        if settings["sparsity"] == "none":
            raise click.UsageError("--model sparse needs a penalty; drop --sparsity none or use --model dense.")
    elif model == "contractive":
        settings.setdefault("contractive_weight", PRESET_CONTRACTIVE_WEIGHT)
        if settings["contractive_weight"] == 0:
            raise click.UsageError(
                "--model contractive needs a positive --contractive-weight; drop --contractive-weight 0 or use "
                "--model dense."
            )
    elif model == "beta-vae" and "beta" not in given:
        settings["beta"] = PRESET_BETA
