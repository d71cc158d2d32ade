"""Infinite-width kernels (NNGP/NTK), Gram files, kernel regression and empirical NTKs."""

from depthlab.kernels.layers import (
    ACTIVATIONS,
    KernelSpec,
    KernelState,
    dense,
    erf,
    fc_kernel,
    identity,
    input_layer,
    kernel_diag,
    kernel_matrices,
    kernel_sweep,
    mori_ueda_spec,
    pointwise,
    relu,
    serial,
)

__all__ = [
    "ACTIVATIONS",
    "KernelSpec",
    "KernelState",
    "dense",
    "erf",
    "fc_kernel",
    "identity",
    "input_layer",
    "kernel_diag",
    "kernel_matrices",
    "kernel_sweep",
    "mori_ueda_spec",
    "pointwise",
    "relu",
    "serial",
]
