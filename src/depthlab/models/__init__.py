"""Shared network builders: every study builds its nets here, from a spec and a seed.

* :mod:`~depthlab.models.packed_fc`: :class:`FCEnsemble`, M fully connected nets trained
  together with a fused SGD step (the fast path of the packed trainer);
* :mod:`~depthlab.models.fc`: :func:`fc_net`, the autograd FC net of any study from an
  :class:`FCSpec`;
* :mod:`~depthlab.models.conv`: convolutional nets;
* :mod:`~depthlab.models.deep_narrow_cnn`: :func:`narrow_cnn`, Lee et al.'s deep narrow CNN
  and its baselines by init name;
* :mod:`~depthlab.models.layers`: the NTK-parameterised layers they are made of.
"""

from depthlab.models.conv import strided_cnn
from depthlab.models.deep_narrow_cnn import CNN_INITS, deep_narrow_channels, narrow_cnn
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

__all__ = ["ALIGN_FLOATS", "CNN_INITS", "INITS", "LOSSES", "FCEnsemble", "FCSpec",
           "GainActivation", "NTKConv2d", "NTKLinear", "SpatialMean", "aligned_stack",
           "deep_narrow_channels", "fc_net", "narrow_cnn", "padded_rows", "strided_cnn"]
