"""scikit-learn's bundled 8x8 digits (1 797 images, no network): the one place they are
loaded.  Every digits dataset (parity, pixels, class images, centred images) starts from
these arrays, so the laptop stand-ins of every study read the same images."""

from __future__ import annotations

import numpy as np

__all__ = ["DIGITS_SIZE", "digits_images"]

DIGITS_SIZE = 1797


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float64 with values 0..16, digit labels (1797,)), fresh copies."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.array(digits.images), np.array(digits.target)
