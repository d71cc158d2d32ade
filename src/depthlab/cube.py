"""Study cubes on disk: one labelled xarray Dataset per study (netCDF via h5netcdf).

Each study builds its own cube (``depthlab.studies.<kind>.cube``); this module writes it
atomically, reads it back with a clear error for a missing or corrupt file, and says where
a dataset's inputs come from, the way every cube and figure states it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from depthlab.data.sources import data_source  # the one home; cubes state it
from depthlab.provenance import InputFileError, atomic_output, to_json

__all__ = ["data_source", "read_cube", "stamp_config_warnings", "write_cube"]


def stamp_config_warnings(cube: xr.Dataset, warnings: list[str], log: Any) -> None:
    """Log each config warning of the study (valid settings that changed what ran, e.g.
    full-batch GD) and state them in the cube's ``config_warnings`` attribute."""
    for message in warnings:
        log.warning("config warning: %s", message)
    if warnings:
        cube.attrs["config_warnings"] = to_json(list(warnings))


def write_cube(cube: xr.Dataset, path: str | Path) -> None:
    # Sparse grids leave many NaN cells; compression makes them nearly free on disk.
    encoding = {name: {"zlib": True, "complevel": 4} for name, var in cube.data_vars.items()
                if var.dtype.kind == "f"}
    with atomic_output(path) as tmp:
        cube.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)


def read_cube(path: str | Path) -> xr.Dataset:
    """The whole cube in memory; a missing, truncated or foreign file is an
    :class:`~depthlab.provenance.InputFileError` naming it (not a raw netCDF traceback)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: cube file not found (run the study's cube rule)")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except Exception as err:  # h5py/h5netcdf/xarray raise many types for a damaged file
        raise InputFileError(f"{path}: not a readable cube ({type(err).__name__}: {err}); "
                             "delete it and rerun the cube rule") from None
