"""Download the real datasets into ``data/``: the one module of depthlab that downloads.

``make data`` / ``snakemake data`` / ``python -m depthlab.data.fetch`` fetch

``mnist``
    the four IDX files into ``data/mnist`` (uncompressed; a mirror may serve ``NAME.gz`` or
    ``NAME``), each verified against the pinned SHA-256 of the canonical uncompressed file;
``cifar10``
    ``cifar-10-python.tar.gz`` (verified against its pinned SHA-256 and size), extracted to
    ``data/cifar-10-batches-py``; optional (see below);
``imagenet32``
    never downloaded (it needs an ImageNet login): the manual steps are printed.

Mirrors and pins live in one file, ``config/data_sources.yaml``.  Mirrors are directory URLs
tried in order: ``http(s)://...`` or ``file://PATH`` (a relative PATH is resolved against the
repository root, so ``file://../shared/data/mnist`` names the shared copy next to a
checkout).  ``--mirror URL`` (repeatable) or ``DEPTHLAB_DATA_MIRRORS="URL URL"`` replace the
configured list for every dataset fetched.

Every download goes to ``<name>.part`` (with ``<name>.part.url`` naming its source), so an
interrupted one resumes where it stopped: HTTP with a ``Range`` request (a server that ignores
it restarts the file), ``file://`` by seeking.  A part from another mirror is discarded (the
``.gz`` wrappers differ between mirrors).  The verified file is published by an atomic rename;
a file whose hash differs from the pin is deleted and refused with both hashes named, and the
next mirror is tried.  An unreachable mirror (connection refused, DNS, ``--timeout``) is not
retried for the other files, so offline the command fails at once with the mirrors it tried.

A required dataset (MNIST) that cannot be fetched is an error (exit status 1).  An optional
one (CIFAR-10) that no mirror has is skipped with a note, unless it was asked for by name
(``--dataset cifar10``); a checksum mismatch is an error for every dataset.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from depthlab.provenance import atomic_output

__all__ = ["REPO", "SOURCES", "ENV_MIRRORS", "FetchError", "ChecksumError",
           "MirrorsUnavailable", "load_sources", "resolve_mirror", "sha256_file",
           "fetch_mnist", "fetch_cifar10", "imagenet32_instructions", "fetch", "main"]

REPO = Path(__file__).resolve().parents[3]
SOURCES = REPO / "config" / "data_sources.yaml"
ENV_MIRRORS = "DEPTHLAB_DATA_MIRRORS"
CHUNK = 1 << 20
USER_AGENT = "depthlab-fetch/1 (+config/data_sources.yaml)"
CIFAR_MARKER = ".depthlab-verified.json"


class FetchError(RuntimeError):
    """A dataset could not be installed; the message says which file and why."""


class ChecksumError(FetchError):
    """A downloaded file differs from its pinned checksum (it has been deleted)."""


class MirrorsUnavailable(FetchError):
    """No mirror could serve a file (all unreachable or without it)."""


class _Unreachable(Exception):
    """The mirror itself cannot be reached: skip it for the rest of the run."""


class _NotThere(Exception):
    """The mirror answers but does not have this file."""


class _BadContent(Exception):
    """The file came but is not the pinned one."""


def load_sources(path: str | os.PathLike = SOURCES) -> dict[str, Any]:
    with open(path) as fh:
        sources = yaml.safe_load(fh)
    if not isinstance(sources, dict) or "mnist" not in sources:
        raise FetchError(f"{path}: not a data-sources file (needs a 'mnist' block)")
    return sources


def resolve_mirror(url: str, root: str | os.PathLike = REPO) -> str:
    """A mirror URL as a directory URL ending in '/'; ``file://`` with an absolute path.

    ``urllib`` would read ``file://../x`` as host ``..``, so file URLs are parsed by hand:
    everything after ``file://`` is the path, relative ones taken from the repository root.
    """
    url = url.strip()
    if url.startswith("file://"):
        path = Path(url[len("file://"):]).expanduser()
        if not path.is_absolute():
            path = Path(root) / path
        return "file://" + str(path.resolve()) + "/"
    if url.startswith(("http://", "https://")):
        return url if url.endswith("/") else url + "/"
    raise FetchError(f"mirror {url!r}: only http://, https:// and file:// mirrors are supported")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- transport


def _download(url: str, part: Path, timeout: float) -> None:
    """Bring ``url`` into ``part``, resuming a part that came from the same URL."""
    tag = part.with_name(part.name + ".url")
    if part.exists() and (not tag.exists() or tag.read_text().strip() != url):
        part.unlink()  # another mirror's bytes: the .gz wrappers differ between mirrors
    part.parent.mkdir(parents=True, exist_ok=True)
    tag.write_text(url + "\n")
    offset = part.stat().st_size if part.exists() else 0
    if url.startswith("file://"):
        _copy_file(Path(url[len("file://"):]), part, offset)
    else:
        _get_http(url, part, offset, timeout)


def _copy_file(src: Path, part: Path, offset: int) -> None:
    if not src.parent.is_dir():  # a mistyped mirror path: no use trying its other files
        raise _Unreachable(f"no directory {src.parent}")
    if not src.is_file():
        raise _NotThere(f"no file {src}")
    size = src.stat().st_size
    if offset > size:  # a part longer than the source is not a prefix of it
        offset = 0
    with open(src, "rb") as fin, open(part, "r+b" if offset else "wb") as fout:
        fin.seek(offset)
        fout.seek(offset)
        fout.truncate()
        shutil.copyfileobj(fin, fout, CHUNK)


def _get_http(url: str, part: Path, offset: int, timeout: float) -> None:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # nothing after `offset`: the part is whole (or wrong; the hash decides)
        if err.code in (403, 404, 410):
            raise _NotThere(f"HTTP {err.code}") from None
        raise _Unreachable(f"HTTP {err.code} {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, refusals
        reason = getattr(err, "reason", err)
        raise _Unreachable(f"unreachable ({reason})") from None
    with resp:
        # a 206 must continue exactly where the part stops; anything else restarts it
        resumed = offset and resp.status == 206 and str(
            resp.headers.get("Content-Range", "")).startswith(f"bytes {offset}-")
        if offset and not resumed:
            _say(f"  {url}: the server ignored the range request; downloading from the start")
        try:
            with open(part, "ab" if resumed else "wb") as fout:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fout.write(block)
        except (OSError, http.client.HTTPException) as err:
            # keep the part: the next run resumes it
            raise _Unreachable(f"connection lost after {part.stat().st_size} bytes "
                               f"({err}); run again to resume") from None


# --------------------------------------------------------------------------- one file


@dataclass
class _Attempts:
    """What each mirror said, for the final error message."""

    lines: list[str] = field(default_factory=list)
    mismatch: bool = False

    def add(self, url: str, why: str) -> None:
        self.lines.append(f"{url}: {why}")


def _fetch_one(name: str, candidates: Sequence[str], mirrors: Sequence[str],
               dead: dict[str, str], dest_dir: Path, timeout: float,
               install: Callable[[Path, str], None], attempts: _Attempts) -> bool:
    """Try every (mirror, candidate name) until ``install(part, remote)`` accepts a file.

    A mirror without the file moves on to the next candidate name; an unreachable mirror
    or one serving a bad file moves on to the next mirror.
    """
    for mirror in mirrors:
        if mirror in dead:
            attempts.add(mirror, f"skipped ({dead[mirror]})")
            continue
        for remote in candidates:
            outcome = _try(mirror, remote, dead, dest_dir, timeout, install, attempts)
            if outcome == "ok":
                return True
            if outcome != "missing":
                break
    return False


def _try(mirror: str, remote: str, dead: dict[str, str], dest_dir: Path, timeout: float,
         install: Callable[[Path, str], None], attempts: _Attempts) -> str:
    url = mirror + remote
    part = dest_dir / (remote + ".part")
    resumed = part.exists()
    for fresh in (False, True):
        if fresh:  # a resumed part that failed its check is retried once from zero
            _say(f"  {url}: the resumed download failed its check; retrying from zero")
        try:
            _download(url, part, timeout)
            install(part, remote)
            _cleanup(part)
            return "ok"
        except _Unreachable as err:
            dead[mirror] = str(err)
            attempts.add(url, str(err))
            return "dead"
        except _NotThere as err:
            _cleanup(part)
            attempts.add(url, f"not there ({err})")
            return "missing"
        except _BadContent as err:
            _cleanup(part)  # never leave a bad download where it could be resumed
            if resumed and not fresh:
                continue
            attempts.mismatch = True
            attempts.add(url, str(err))
            _say(f"  refused {url}: {err}")
            return "bad"
    raise AssertionError("unreachable")


def _cleanup(part: Path) -> None:
    part.unlink(missing_ok=True)
    part.with_name(part.name + ".url").unlink(missing_ok=True)


def _fail(what: str, attempts: _Attempts) -> FetchError:
    tried = "\n  ".join(attempts.lines) or "(no mirror configured)"
    if attempts.mismatch:
        return ChecksumError(f"{what}: refused, no mirror served the pinned file:\n  {tried}")
    return MirrorsUnavailable(f"{what}: could not be fetched from any mirror; tried:\n  {tried}")


# --------------------------------------------------------------------------- datasets


def _check_hash(label: str, path: Path, want_sha: str, want_size: int | None,
                got_sha: str, got_size: int) -> None:
    if got_sha != want_sha or (want_size is not None and got_size != want_size):
        raise _BadContent(
            f"{label}: SHA-256 {got_sha} ({got_size} bytes) != pinned {want_sha}"
            + (f" ({want_size} bytes)" if want_size is not None else "")
            + f"; the download ({path.name}) was deleted")


def fetch_mnist(data_dir: str | os.PathLike, spec: dict[str, Any], mirrors: Sequence[str],
                timeout: float = 10.0, dead: dict[str, str] | None = None) -> Path:
    """Install the four verified, uncompressed MNIST files in ``data_dir/<directory>``."""
    dest = Path(data_dir) / spec.get("directory", "mnist")
    dest.mkdir(parents=True, exist_ok=True)
    dead = {} if dead is None else dead
    for name, pin in spec["files"].items():
        final = dest / name
        want_sha, want_size = str(pin["sha256"]).lower(), pin.get("size")
        if final.is_file():
            got = sha256_file(final)
            if got == want_sha:
                _say(f"mnist/{name}: present, SHA-256 verified")
                continue
            _say(f"mnist/{name}: present but SHA-256 {got} != pinned {want_sha}; fetching again")

        def install(part: Path, remote: str, final=final, name=name, want_sha=want_sha,
                    want_size=want_size) -> None:
            h, size = hashlib.sha256(), 0
            with atomic_output(final) as tmp:
                try:
                    opener = gzip.open if remote.endswith(".gz") else open
                    with opener(part, "rb") as fin, open(tmp, "wb") as fout:
                        for block in iter(lambda: fin.read(CHUNK), b""):
                            h.update(block)
                            size += len(block)
                            fout.write(block)
                except (EOFError, OSError, zlib.error) as err:
                    raise _BadContent(f"{name}: {remote} is not a whole gzip file ({err}); "
                                      f"deleted it") from None
                _check_hash(name, part, want_sha, want_size, h.hexdigest(), size)
            _say(f"mnist/{name}: SHA-256 verified ({size} bytes) from {remote}")

        attempts = _Attempts()
        if not _fetch_one(name, [name + ".gz", name], mirrors, dead, dest, timeout, install,
                          attempts):
            raise _fail(f"MNIST file {name}", attempts)
    return dest


def fetch_cifar10(data_dir: str | os.PathLike, spec: dict[str, Any], mirrors: Sequence[str],
                  timeout: float = 10.0, dead: dict[str, str] | None = None) -> Path:
    """Download, verify and extract the CIFAR-10 python tarball to ``data_dir/<extract>``.

    The tarball is deleted after extraction; a marker in the extracted folder records the
    tarball's hash and each batch file's SHA-256, so a later run verifies the files instead
    of downloading 170 MB again.
    """
    data_dir = Path(data_dir)
    archive, extract = spec["archive"], spec["extract"]
    out = data_dir / extract
    if _cifar_verified(out, spec):
        _say(f"{extract}: present, SHA-256 of every batch verified")
        return out
    data_dir.mkdir(parents=True, exist_ok=True)
    tarball = data_dir / archive
    want_sha, want_size = str(spec["sha256"]).lower(), spec.get("size")

    def install(part: Path, remote: str) -> None:
        md5, sha = hashlib.md5(), hashlib.sha256()
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                md5.update(block)
                sha.update(block)
        _check_hash(archive, part, want_sha, want_size, sha.hexdigest(), part.stat().st_size)
        if spec.get("md5") and md5.hexdigest() != spec["md5"]:
            raise _BadContent(f"{archive}: md5 {md5.hexdigest()} != pinned {spec['md5']}")
        os.replace(part, tarball)
        _say(f"{archive}: SHA-256 verified ({tarball.stat().st_size} bytes) from {remote}")

    if not (tarball.is_file() and sha256_file(tarball) == want_sha):
        attempts = _Attempts()
        if not _fetch_one(archive, [archive], mirrors, dead if dead is not None else {},
                          data_dir, timeout, install, attempts):
            raise _fail(f"CIFAR-10 archive {archive}", attempts)
    try:
        _extract_cifar(tarball, data_dir, extract, want_sha)
    finally:
        tarball.unlink()  # extracted, or refused: either way not kept (170 MB)
    return out


def _extract_cifar(tarball: Path, data_dir: Path, extract: str, tar_sha: str) -> None:
    """Extract into a temporary folder, then rename it into place (atomic for readers)."""
    tmp = data_dir / f".{extract}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar.getmembers():
                top = Path(member.name).parts[0] if member.name else ""
                if top != extract or not (member.isfile() or member.isdir()):
                    raise FetchError(f"{tarball}: unexpected member {member.name!r}")
            # filter="data" refuses absolute paths, links out of the folder, device files
            tar.extractall(tmp, filter="data")
        hashes = {p.name: sha256_file(p) for p in sorted((tmp / extract).iterdir())
                  if p.is_file()}
        (tmp / extract / CIFAR_MARKER).write_text(json.dumps(
            {"archive_sha256": tar_sha, "files_sha256": hashes}, indent=1) + "\n")
        out = data_dir / extract
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp / extract, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"{extract}: extracted to {data_dir / extract}")


def _cifar_verified(out: Path, spec: dict[str, Any]) -> bool:
    marker = out / CIFAR_MARKER
    if not marker.is_file():
        return False
    try:
        record = json.loads(marker.read_text())
        files = record["files_sha256"]
    except (ValueError, KeyError, TypeError):
        return False
    if record.get("archive_sha256") != str(spec["sha256"]).lower() or not files:
        return False
    return all((out / n).is_file() and sha256_file(out / n) == h for n, h in files.items())


def imagenet32_instructions(spec: dict[str, Any]) -> str:
    return spec["manual"].rstrip() + "\n"


# --------------------------------------------------------------------------- driver

FETCHERS = {"mnist": fetch_mnist, "cifar10": fetch_cifar10}


def _mirrors_for(name: str, spec: dict[str, Any], override: Sequence[str] | None) -> list[str]:
    urls = list(override) if override else list(spec.get("mirrors") or [])
    return [resolve_mirror(u) for u in urls]


def fetch(datasets: Iterable[str] | None = None, *, data_dir: str | os.PathLike = "data",
          mirrors: Sequence[str] | None = None, sources: str | os.PathLike = SOURCES,
          timeout: float = 10.0) -> int:
    """Fetch ``datasets`` (None: every downloadable one); 0 on success, 1 on failure."""
    spec = load_sources(sources)
    named = datasets is not None
    names = list(datasets) if named else [n for n in spec if n in FETCHERS]
    unknown = [n for n in names if n not in spec]
    if unknown:
        _say(f"unknown dataset(s) {unknown}; {Path(sources).name} declares {sorted(spec)}")
        return 1
    if mirrors is None and os.environ.get(ENV_MIRRORS, "").strip():
        mirrors = os.environ[ENV_MIRRORS].split()
    failed = False
    for name in names:
        block = spec[name]
        if name not in FETCHERS:
            _say(f"{name}: not downloadable.\n{imagenet32_instructions(block)}")
            continue
        try:
            urls = _mirrors_for(name, block, mirrors)
        except FetchError as err:
            _say(f"error: {err}")
            return 1
        _say(f"{name}: mirrors {' '.join(urls)}")
        try:
            FETCHERS[name](data_dir, block, urls, timeout=timeout)
        except ChecksumError as err:
            _say(f"error: {err}")
            failed = True
        except MirrorsUnavailable as err:
            if block.get("required", True) or named:
                _say(f"error: {err}")
                failed = True
            else:
                _say(f"note: {name} (optional) skipped: {err}")
        except FetchError as err:
            _say(f"error: {err}")
            failed = True
    if not named and "imagenet32" in spec:
        _say("imagenet32: manual step (needs a login).\n"
             + imagenet32_instructions(spec["imagenet32"]))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depthlab.data.fetch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", dest="datasets", metavar="NAME",
                    help="mnist, cifar10 or imagenet32 (repeatable; default: all)")
    ap.add_argument("--mirror", action="append", dest="mirrors", metavar="URL",
                    help=f"replace the configured mirrors (repeatable; or ${ENV_MIRRORS})")
    ap.add_argument("--data-dir", default="data", help="where to install (default: data)")
    ap.add_argument("--sources", default=str(SOURCES), help="mirrors and pins (YAML)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for a mirror before trying the next (default 10)")
    args = ap.parse_args(argv)
    return fetch(args.datasets, data_dir=args.data_dir, mirrors=args.mirrors,
                 sources=args.sources, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
