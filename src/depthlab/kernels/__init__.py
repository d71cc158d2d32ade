"""Infinite-width kernels (NNGP/NTK), Gram files, kernel regression and empirical NTKs.

Submodules
----------
``layers``      compositional analytic NNGP/NTK layers, :func:`kernel_sweep` (NumPy only).
``gram``        blocked HDF5 Gram files.
``regression``  Cholesky kernel regression, finite-time MSE gradient flow (Xiao eqs. 4-5),
                frozen-kernel dynamics for hinge/MSE losses (Geiger App. C).
``spectra``     lambda_max/bulk, condition number, eta_theory, residual predictor (Xiao §3).
``phase``       q*, c*, chi_1, chi_c*, depth scales, ordered/critical/chaotic (Xiao §2, §4).
``empirical``   finite-width NTKs of torch models (Jacobian, NTK-vector-product and
                structured MLP versions), the relative kernel change.
``conv``        CNNGP / CNTK layers and sweeps (torch).
``finite``      the finite net of a conv kernel spec (:func:`conv_net`, torch).

The ``layers`` names are imported eagerly; the others are re-exported lazily (first
attribute access imports the submodule), so ``import depthlab.kernels`` stays free of
SciPy and torch start-up cost for the workflow rules that only compute Grams.
"""

from __future__ import annotations

import importlib
from typing import Any

from depthlab.kernels.layers import (
    ACTIVATIONS,
    KernelSpec,
    KernelState,
    dense,
    erf,
    fc_kernel,
    he_relu_spec,
    identity,
    input_layer,
    kernel_diag,
    kernel_matrices,
    kernel_sweep,
    pointwise,
    relu,
    serial,
)

_LAZY: dict[str, str] = {
    # regression
    "kernel_regression_fit": "regression",
    "predict": "regression",
    "predict_streamed": "regression",
    "ntk_test_error": "regression",
    "one_hot": "regression",
    "flow_eig": "regression",
    "flow_coefficients": "regression",
    "flow_train_predictions": "regression",
    "predict_flow_streamed": "regression",
    "gradient_flow_predictions": "regression",
    "ntk_flow_test_error": "regression",
    "frozen_kernel_dynamics": "regression",
    "FrozenDynamics": "regression",
    "FlowEig": "regression",
    "FlowPredictions": "regression",
    # spectra
    "Spectrum": "spectra",
    "spectrum": "spectra",
    "eigenvalues": "spectra",
    "lambda_bulk": "spectra",
    "condition_number": "spectra",
    "eta_theory": "spectra",
    "depth_spectra": "spectra",
    "mean_predictor": "spectra",
    "predictor_apply": "spectra",
    "structured_limit_predictor": "spectra",
    "residual_predictor": "spectra",
    "depth_residuals": "spectra",
    # phase
    "PhasePoint": "phase",
    "phase_point": "phase",
    "variance_map": "phase",
    "correlation_map": "phase",
    "fixed_point_q": "phase",
    "fixed_point_c": "phase",
    "classify_phase": "phase",
    "slope": "phase",
    "depth_scale": "phase",
    "critical_w_var": "phase",
    "ntk_limit_structure": "phase",
    "kappa_limit": "phase",
    # empirical (torch)
    "empirical_ntk": "empirical",
    "empirical_ntk_jacobian": "empirical",
    "empirical_ntk_vp": "empirical",
    "empirical_ntk_structured": "empirical",
    "ntk_vector_product": "empirical",
    "ntk_relative_change": "empirical",
    "feature_nngp": "empirical",
    # conv (torch): CNNGP / CNTK layers live in depthlab.kernels.conv
    "ConvSpec": "conv",
    "ConvState": "conv",
    "conv_sweep": "conv",
    "conv_sweep_panel": "conv",
    "check_kernel_spec": "conv",
    "is_conv_spec": "conv",
    # the finite net of a conv kernel spec (torch)
    "conv_net": "finite",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "he_relu_spec",
    "pointwise",
    "relu",
    "serial",
    *_LAZY,
]
