"""The one activation table: what each engine implements, and the gains."""

import math

import pytest

from depthlab.activations import ACTIVATIONS, activation_gain, check_activation, names_for
from depthlab.config import ConfigError
from depthlab.kernels.layers import ACTIVATIONS as KERNEL_LAYERS
from depthlab.models.packed_fc import ACTIVATIONS as PACKED


def test_every_engine_implements_what_the_table_says():
    assert set(PACKED) == set(names_for("packed"))
    assert set(names_for("kernel")) <= set(KERNEL_LAYERS)
    assert set(names_for("module")) == {"relu", "softplus"}
    assert all(a.engines for a in ACTIVATIONS.values())


def test_check_names_the_config_key():
    assert check_activation("relu", "packed", "studies.x.training.activation") == "relu"
    with pytest.raises(ConfigError, match=r"studies\.x\.grids\[0\]\.activation.*'erf'"):
        check_activation("erf", "module", "studies.x.grids[0].activation")


def test_relu_gain_is_sqrt2():
    assert math.isclose(activation_gain("relu"), math.sqrt(2.0), rel_tol=1e-12)
