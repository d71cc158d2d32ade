"""Dataset generators and their HDF5 storage."""

from depthlab.data.io import read_dataset, write_dataset
from depthlab.data.synthetic import GENERATORS, generate

__all__ = ["GENERATORS", "generate", "read_dataset", "write_dataset"]
