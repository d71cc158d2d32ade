"""The one status vocabulary of every trained model, trainer and cube.

A run ends in exactly one of these (cubes add ``not_run`` for grid cells nobody trained):

``converged``   the stopping criterion was met (zero training error / zero hinge loss);
``max_epochs``  epoch-based trainers: the epoch budget ran out first;
``max_steps``   step-based dynamics (adaptive-step flows): the step or time budget ran out;
``diverged``    the loss or the outputs became non-finite or exploded.

Only ``converged`` runs are evidence for a claim about trained nets; the others are kept in
every cube and reported, never dropped.
"""

from __future__ import annotations

CONVERGED = "converged"
MAX_EPOCHS = "max_epochs"
MAX_STEPS = "max_steps"
DIVERGED = "diverged"
NOT_RUN = "not_run"

STATUSES = (CONVERGED, MAX_EPOCHS, MAX_STEPS, DIVERGED)
CUBE_STATUSES = (*STATUSES, NOT_RUN)
STATUS_DOC = (
    "converged (stopping criterion met: zero training error or hinge loss), max_epochs / "
    "max_steps (the epoch / step budget ran out first), diverged (non-finite or exploding "
    "loss), not_run (no run at this grid point)"
)
