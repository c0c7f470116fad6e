"""Benchmark of the autoencoder family on MNIST: each model's reconstruction error beside
PCA's, its training time, and the property the model exists for, measured.

Data: the 10,000 MNIST test images in ../shared/data/mnist, split 80/20 by a seeded
shuffle. Every model trains on the 8,000 training images for a fixed number of epochs
(no early stopping, so no training image is held back) with a latent code of 32 units,
and is measured on the 2,000 validation images. Errors are in scaled units: pixels
divided by 255.

Run ``python benchmarks/models.py`` to print the results and write
docs/benchmarks/models.md with a PNG grid of VAE samples beside it, or add ``--quick``
for a smoke run on 1,000 images and 2 epochs that writes nothing unless ``--out`` is
given.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import aekit
from aekit.baselines import pca_reconstruction_mse
from aekit.cli.models import PRESET_BETA, PRESET_CONTRACTIVE_WEIGHT
from aekit.data import read_idx
from aekit.data.writers import write_image_grid
from aekit.losses import jacobian_frobenius_sq

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
DEFAULT_OUT = REPOSITORY / "docs" / "benchmarks" / "models.md"

SEED = 0
LATENT_DIM = 32
MASKING_FRACTION = 0.3
N_GENERATED = 64
# Epochs of every model. By single-model timings the whole run takes under 15 minutes on
# 2 free CPU cores (an estimate), most of it in the contractive and convolutional models.
EPOCHS = 30


@dataclasses.dataclass
class Case:
    """One model of the benchmark: its estimator class and parameters.

    ``description`` is formatted with the estimator's parameters, so the page shows
    the values the run used.
    """

    name: str
    estimator: type
    params: dict[str, Any]
    epochs: int
    description: str


CASES = [
    Case("dense", aekit.AutoEncoder, {}, EPOCHS, "plain dense autoencoder, hidden layers 512 and 256, linear code"),
    Case("denoising", aekit.AutoEncoder, {"noise": "masking"}, EPOCHS,
         "dense, trained on inputs with {noise_fraction:.0%} masking noise"),
    Case("dense-relu-code", aekit.AutoEncoder, {"latent_activation": "relu"}, EPOCHS,
         "dense, ReLU code, no penalty: the L1 model's plain twin"),
    Case("sparse-l1", aekit.AutoEncoder, {"sparsity": "l1"}, EPOCHS,
         "dense, ReLU code with the L1 penalty (weight {sparsity_weight:g})"),
    Case("dense-sigmoid-code", aekit.AutoEncoder, {"latent_activation": "sigmoid"}, EPOCHS,
         "dense, sigmoid code, no penalty: the KL model's plain twin"),
    Case("sparse-kl", aekit.AutoEncoder, {"sparsity": "kl"}, EPOCHS,
         "dense, sigmoid code with the KL sparsity penalty towards {sparsity_target:g} (weight {sparsity_weight:g})"),
    Case("dense-256", aekit.AutoEncoder, {"hidden_dims": (256,)}, EPOCHS,
         "dense, one hidden layer of 256: the contractive model's plain twin"),
    Case("contractive", aekit.AutoEncoder, {"hidden_dims": (256,), "contractive_weight": PRESET_CONTRACTIVE_WEIGHT},
         EPOCHS, "dense, one hidden layer of 256, contractive penalty (weight {contractive_weight:g})"),
    Case("conv", aekit.AutoEncoder, {"architecture": "conv"}, EPOCHS, "convolutional, channels 32 and 64"),
    Case("vae", aekit.VariationalAutoEncoder, {}, EPOCHS, "dense VAE, Bernoulli decoder, beta = {beta:g}"),
    Case("beta-vae", aekit.VariationalAutoEncoder, {"beta": PRESET_BETA}, EPOCHS, "dense VAE, beta = {beta:g}"),
]


def load_split(path: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(path).astype(np.float32)[:, None]  # (10000, 1, 28, 28), values 0-255
    order = np.random.default_rng(SEED).permutation(len(images))
    if limit is not None:
        order = order[:limit]
    n_train = int(round(0.8 * len(order)))
    return images[order[:n_train]], images[order[n_train:]]


def fit(case: Case, train: np.ndarray, epochs: int) -> tuple[Any, float]:
    estimator = case.estimator(
        latent_dim=LATENT_DIM,
        max_epochs=epochs,
        validation_fraction=0.0,
        early_stopping=False,
        random_state=SEED,
        **case.params,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # latent_dim is far below 784 features, so the only expected warning is a VAE's
        # posterior collapse, which the results table shows anyway.
        warnings.simplefilter("ignore", aekit.AekitWarning)
        estimator.fit(train)
    return estimator, time.perf_counter() - started


def mean_jacobian_norm(estimator: Any, images: np.ndarray) -> float:
    """Mean over images of the Frobenius norm of d z / d x, with x in scaled units."""
    x = torch.from_numpy(estimator.scaler_.transform(images.reshape(len(images), -1)))
    model = estimator.model_.eval()
    with torch.no_grad():
        norms = [jacobian_frobenius_sq(model.encode, batch).sqrt() for batch in x.split(256)]
    return float(torch.cat(norms).mean())


def code_statistics(codes: np.ndarray) -> dict[str, float]:
    """Mean absolute activation, and the share of activations below 1% of the largest."""
    magnitude = np.abs(codes)
    return {
        "mean_activation": float(magnitude.mean()),
        "near_zero": float(np.mean(magnitude < 0.01 * magnitude.max())),
        "code_std": float(codes.std()),
    }


def measure(case: Case, estimator: Any, val: np.ndarray, noisy_val: np.ndarray) -> dict[str, Any]:
    result: dict[str, Any] = {
        "description": case.description.format(**estimator.get_params()),
        "val_mse": float(np.mean((estimator.reconstruct(val) / 255.0 - val / 255.0) ** 2)),
        "parameters": sum(p.numel() for p in estimator.model_.parameters()),
        # In scaled units (pixels / 255), against the clean validation images.
        "masked_mse": float(np.mean((reconstruct_quietly(estimator, noisy_val) - val / 255.0) ** 2)),
    }
    if case.estimator is aekit.AutoEncoder:
        result.update(code_statistics(estimator.transform(val)))
        if case.params.get("architecture") != "conv":
            result["jacobian_norm"] = mean_jacobian_norm(estimator, val)
    else:
        summary = estimator.posterior_summary(val)
        result.update({f"vae_{key}": value for key, value in summary.items()})
    return result


def reconstruct_quietly(estimator: Any, images: np.ndarray) -> np.ndarray:
    """Reconstruct in scaled units without the warning for models trained without noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aekit.AekitWarning)
        return estimator.denoise(images) / 255.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MNIST images file (IDX, gzip or not).")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"Markdown page to write (default: {DEFAULT_OUT.relative_to(REPOSITORY)}, none with --quick).")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 1,000 images, 2 epochs per model.")
    args = parser.parse_args(argv)

    if not args.data.is_file():
        print(f"models.py: error: MNIST images not found at '{args.data}'; pass --data PATH.", file=sys.stderr)
        return 1
    out = args.out if args.out is not None or args.quick else DEFAULT_OUT

    train, val = load_split(args.data, 1000 if args.quick else None)
    noisy_val = np.where(np.random.default_rng(SEED).random(val.shape) < MASKING_FRACTION, 0.0, val).astype(np.float32)
    _, pca_errors = pca_reconstruction_mse(
        train.reshape(len(train), -1) / 255.0, {"val": val.reshape(len(val), -1) / 255.0}, LATENT_DIM, random_state=SEED
    )
    pca_mse = pca_errors["val"]
    print(f"data: {len(train)} training and {len(val)} validation images; PCA-{LATENT_DIM} validation MSE {pca_mse:.5f}")

    results: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    for case in CASES:
        epochs = 2 if args.quick else case.epochs
        estimator, seconds = fit(case, train, epochs)
        results[case.name] = {"seconds": seconds, "epochs": epochs, **measure(case, estimator, val, noisy_val)}
        fitted[case.name] = estimator
        print(f"{case.name}: {format_result(results[case.name])}", flush=True)

    if out is not None:
        write_page(out, results, fitted, pca_mse, len(train), len(val), quick=args.quick)
        print(f"wrote {out}")
    return 0


def format_result(result: dict[str, Any]) -> str:
    parts = [f"{key} {value:.5g}" if isinstance(value, float) else f"{key} {value}"
             for key, value in result.items() if not isinstance(value, (list, str))]
    return ", ".join(parts)


# --- the page -------------------------------------------------------------------------


def write_page(
    out: Path,
    results: dict[str, dict[str, Any]],
    fitted: dict[str, Any],
    pca_mse: float,
    n_train: int,
    n_val: int,
    *,
    quick: bool,
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    grids = {}
    for name in ("vae", "beta-vae"):
        samples = fitted[name].sample(N_GENERATED, random_state=SEED) / 255.0
        grid_path = out.with_name(f"{out.stem}-{name}-samples.png")
        write_image_grid(samples, grid_path, value_range=(0.0, 1.0))
        grids[name] = grid_path.name

    lines = [
        "# The autoencoder family on MNIST",
        "",
        f"Written by `benchmarks/models.py`{' --quick' if quick else ''} on {datetime.date.today().isoformat()}; "
        "do not edit the numbers by hand.",
        "",
        f"- Data: the MNIST test set ({n_train + n_val:,} images of 28 x 28), split 80/20 by a shuffle seeded "
        f"with {SEED}: {n_train:,} training and {n_val:,} validation images.",
        f"- Every model has a latent code of {LATENT_DIM} units, trains on all training images for a fixed "
        "number of epochs (no early stopping) with the default batch size 256 and learning rate 1e-3, "
        f"and is measured on the validation images. PCA-{LATENT_DIM} is fitted on the same training images.",
        "- MSE is in scaled units (pixels / 255), averaged over pixels and images.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"(threads: {torch.get_num_threads()}), aekit {aekit.__version__}. Training times depend on the "
        "load of the machine during the run.",
        "",
        "## All models",
        "",
        f"| model | what it is | epochs | parameters | validation MSE | PCA-{LATENT_DIM} MSE | training time (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in CASES:
        r = results[case.name]
        lines.append(
            f"| {case.name} | {r['description']} | {r['epochs']} | {r['parameters']:,} | {r['val_mse']:.5f} | "
            f"{pca_mse:.5f} | {r['seconds']:.1f} |"
        )

    lines += property_sections(results)
    lines += vae_section(results, grids)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def property_sections(results: dict[str, dict[str, Any]]) -> list[str]:
    dense, denoising = results["dense"], results["denoising"]
    twin, contractive = results["dense-256"], results["contractive"]
    conv = results["conv"]
    lines = [
        "",
        "## Denoising",
        "",
        f"Validation images with {MASKING_FRACTION:.0%} of their pixels set to 0 (seeded), reconstructed and "
        "compared with the clean images (MSE, scaled units):",
        "",
        "| model | MSE against the clean images |",
        "| --- | ---: |",
        f"| dense | {dense['masked_mse']:.5f} |",
        f"| denoising | {denoising['masked_mse']:.5f} |",
        "",
        f"The denoising model's error is {denoising['masked_mse'] / dense['masked_mse']:.2f} times the plain model's.",
        "",
        "## Sparse",
        "",
        "Code statistics on the validation images: the mean absolute activation, and the share of code "
        "activations (over images and units) below 1% of the model's largest one. Each penalty is compared "
        "with a plain model that has the same code activation.",
        "",
        "| model | code | mean activation | near-zero share | validation MSE |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    codes = {"dense": "linear", "dense-relu-code": "ReLU", "sparse-l1": "ReLU + L1",
             "dense-sigmoid-code": "sigmoid", "sparse-kl": "sigmoid + KL"}
    for name, code in codes.items():
        r = results[name]
        lines.append(f"| {name} | {code} | {r['mean_activation']:.4f} | {r['near_zero']:.1%} | {r['val_mse']:.5f} |")
    lines += [
        "",
        "## Contractive",
        "",
        "Mean Frobenius norm of the encoder's Jacobian dz/dx on the validation images (x in scaled units), "
        "and the standard deviation of the code values, since a smaller code alone would also shrink the "
        "Jacobian. The contractive model computes its penalty exactly by batched autograd, which costs about "
        "one backward pass per latent unit and step.",
        "",
        "| model | Jacobian norm | code standard deviation | validation MSE |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("dense", "dense-256", "contractive"):
        r = results[name]
        lines.append(f"| {name} | {r['jacobian_norm']:.3f} | {r['code_std']:.3f} | {r['val_mse']:.5f} |")
    lines += [
        "",
        f"The contractive model's Jacobian norm is {contractive['jacobian_norm'] / twin['jacobian_norm']:.2f} times "
        "that of its plain twin.",
        "",
        "## Convolutional",
        "",
        "| model | parameters | validation MSE |",
        "| --- | ---: | ---: |",
        f"| dense | {dense['parameters']:,} | {dense['val_mse']:.5f} |",
        f"| conv | {conv['parameters']:,} | {conv['val_mse']:.5f} |",
        "",
        f"The convolutional model has {conv['parameters'] / dense['parameters']:.0%} of the dense model's "
        f"parameters and {conv['val_mse'] / dense['val_mse']:.2f} times its validation MSE.",
    ]
    return lines


def vae_section(results: dict[str, dict[str, Any]], grids: dict[str, str]) -> list[str]:
    lines = [
        "",
        "## Variational",
        "",
        "ELBO, its reconstruction term and the KL term in nats per validation image (Bernoulli likelihood of "
        "the pixels / 255, one seeded posterior draw per image). A latent unit is active when the variance of "
        "its posterior mean over the validation images exceeds 0.01 (Burda et al., 2016). Reconstruction MSE "
        "decodes the posterior mean.",
        "",
        f"| model | ELBO | reconstruction NLL | KL | active units of {LATENT_DIM} | validation MSE |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("vae", "beta-vae"):
        r = results[name]
        lines.append(
            f"| {name} | {r['vae_elbo']:.2f} | {r['vae_reconstruction_nll']:.2f} | {r['vae_kl_divergence']:.2f} | "
            f"{r['vae_active_units']} | {r['val_mse']:.5f} |"
        )
    for name in ("vae", "beta-vae"):
        lines += [
            "",
            f"{N_GENERATED} samples of the {name} (codes drawn from N(0, I), seed {SEED}, decoded to the mean "
            "pixel values):",
            "",
            f"![{name} samples]({grids[name]})",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
