"""Shared trainers: one device, logging and status vocabulary for every study.

* :mod:`~depthlab.training.status`: the status vocabulary (converged, max_epochs,
  max_steps, diverged, not_run);
* :mod:`~depthlab.training.device`: device choice and the progress-log sink;
* :mod:`~depthlab.training.packed_sgd`: packed mini-batch SGD of FC nets
  (:func:`train_members`), bitwise identical per member whatever the pack;
* :mod:`~depthlab.training.hinge`: the momentum hinge-loss flow with App. A's adaptive step
  (Geiger et al.), for any scalar-output module;
* :mod:`~depthlab.training.module`: a plain trainer for any ``nn.Module``.

Submodules are imported on use (``import depthlab.training`` stays light).
"""
