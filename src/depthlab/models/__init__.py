"""Shared network builders: every study builds its nets here, from a spec and a seed.

* :mod:`~depthlab.models.packed_fc`: :class:`FCEnsemble`, M fully connected nets trained
  together with a fused SGD step (the fast path of the packed trainer);
* :mod:`~depthlab.models.fc`: :func:`fc_net`, the autograd FC net of any study from an
  :class:`FCSpec`;
* :mod:`~depthlab.models.conv`: shared conv building blocks;
* :mod:`~depthlab.models.layers`: the NTK-parameterised layers they are made of.
"""

from depthlab.models.fc import FCSpec, fc_net
from depthlab.models.layers import GainActivation, NTKConv2d, NTKLinear, SpatialMean
from depthlab.models.packed_fc import (
    ALIGN_FLOATS,
    INITS,
    LOSSES,
    FCEnsemble,
    aligned_stack,
    padded_rows,
)

__all__ = ["ALIGN_FLOATS", "INITS", "LOSSES", "FCEnsemble", "FCSpec", "GainActivation",
           "NTKConv2d", "NTKLinear", "SpatialMean", "aligned_stack", "fc_net", "padded_rows"]
