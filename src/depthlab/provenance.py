"""Provenance and safe file output shared by every stage.

Every file depthlab writes carries the config slice, seed and software versions that
made it, and appears atomically: a job killed mid-write leaves no file a later rule
could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_TRACKED_PACKAGES = (
    "depthlab",
    "numpy",
    "scipy",
    "torch",
    "h5py",
    "xarray",
    "h5netcdf",
    "matplotlib",
    "snakemake",
)


def cpu_model() -> str:
    """The CPU's model name (recorded with every timing and verdict table: float results and
    speeds differ between CPU types)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def software_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour can change a number we record."""
    versions = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_json(obj: Any) -> str:
    """Canonical JSON (sorted keys) so equal configs give equal strings and hashes."""
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def config_hash(obj: Any) -> str:
    return hashlib.sha256(to_json(obj).encode()).hexdigest()[:16]


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over named arrays (name, dtype, shape, bytes), independent of file layout."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(str(arr.dtype).encode())
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def provenance_attrs(config_slice: Any, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """Attributes to stamp on an output file (HDF5 attrs or netCDF global attrs)."""
    attrs: dict[str, Any] = {
        "config": to_json(config_slice),
        "config_hash": config_hash(config_slice),
        "software_versions": to_json(software_versions()),
    }
    if seed is not None:
        attrs["seed"] = int(seed)
    for key, value in extra.items():
        attrs[key] = value if isinstance(value, (str, int, float, np.number)) else to_json(value)
    return attrs


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary file lives in the same directory so the final rename is atomic on
    POSIX file systems (including the shared file systems clusters use). The rename replaces
    the directory entry: a symbolic link planted at `path` is replaced, its target never
    written (tests/unit/test_unsafe_outputs.py).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = _identity(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _warn_if_written_meanwhile(path, before)
        # mkstemp creates 0600 files; results on shared cluster storage must be readable
        # by collaborators, so apply the usual umask-derived mode before publishing.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _warn_if_written_meanwhile(path: Path, before: tuple[int, int, int] | None) -> None:
    """Duplicate work detection: if `path` appeared or changed while this block ran, another
    process made the same output at the same time (e.g. two `snakemake` runs started in the
    same second both passed Snakemake's lock). The rename below still leaves one complete
    file (both writers publish whole files atomically); the log says what happened."""
    now = _identity(path)
    if now is not None and now != before:
        logging.getLogger("depthlab").warning(
            "%s was written by another process while this job made it (two workflow runs "
            "in the same directory?); replacing it with this job's copy. Run one snakemake "
            "per working directory.", path)


class UnsafeOutputError(RuntimeError):
    """A path a job would write is a symbolic link: the write would land on its target."""


def links_under(directory: str | os.PathLike) -> list[Path]:
    """Every symbolic link (to a file or a directory, dangling or not) under ``directory``,
    without following any (``directory`` itself may be a link, e.g. to scratch storage)."""
    found = []
    for root, dirs, files in os.walk(directory):  # followlinks=False: linked dirs not entered
        found.extend(Path(root, name) for name in sorted(dirs + files)
                     if os.path.islink(os.path.join(root, name)))
    return sorted(found)


def refuse_links(directory: str | os.PathLike) -> None:
    """Refuse a run while a symbolic link sits under the results ``directory``: Snakemake
    opens benchmark and log files with a plain ``open(path, "w")``, which follows a link, so a
    link planted where a job writes (``results/benchmarks/...tsv -> ~/.bashrc``) would
    overwrite its target; a dataset linked in from elsewhere would be read as this config's.
    depthlab itself makes no links there. An :class:`UnsafeOutputError` names them."""
    links = links_under(directory)
    if links:
        shown = "; ".join(f"{link} -> {os.readlink(link)}" for link in links[:5])
        more = f" (and {len(links) - 5} more)" if len(links) > 5 else ""
        raise UnsafeOutputError(
            f"{directory}: {len(links)} symbolic link(s) under the results directory: "
            f"{shown}{more}. A job writing one would write its target instead (outside "
            f"{directory}, or over another result); depthlab makes no links there. Remove "
            "them (or replace each with a copy of its target) and rerun.")


class InputFileError(RuntimeError):
    """An input file is missing, truncated or not what the rule expected."""


def open_h5_checked(path: str | os.PathLike, required: tuple[str, ...] = ()):
    """Open an HDF5 file for reading, turning corruption into an error that names the file."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise InputFileError(
            f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}. "
            "Delete it and rerun the rule that makes it."
        ) from err
    missing = [name for name in required if name not in handle]
    if missing:
        handle.close()
        raise InputFileError(f"{path}: missing dataset(s) {missing}; was it made by depthlab?")
    return handle


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, streamed (raw source files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
