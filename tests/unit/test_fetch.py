"""`make data` (depthlab.data.fetch) against real mirrors it can reach offline: a file://
mirror of the shared real MNIST (../shared/data/mnist next to the checkout), tampered and
truncated copies of it, a tiny HTTP server on 127.0.0.1 (with and without Range support),
a closed port standing in for an offline mirror, and a CIFAR-10-shaped tarball written here.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import shutil
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from depthlab.data import fetch as F
from depthlab.data.mnist import load_mnist

SHARED = REPO.parent / "shared" / "data" / "mnist"  # ../shared next to the repository root
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no real MNIST at {SHARED} "
                                  "(the shared copy beside the checkout)")
SOURCES = F.load_sources()
PINS = SOURCES["mnist"]["files"]
LABELS = ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")  # small: fast tests


def _spec(names=LABELS):
    return {"directory": "mnist", "files": {n: PINS[n] for n in names}}


def _url(path: Path) -> str:
    return "file://" + str(path)


def _mirror_copy(tmp_path: Path, names=LABELS, gz=True) -> Path:
    """A private mirror holding the shared files (as .gz, or decompressed)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(parents=True)
    for n in names:
        if gz:
            shutil.copy(SHARED / f"{n}.gz", mirror / f"{n}.gz")
        else:
            (mirror / n).write_bytes(gzip.decompress((SHARED / f"{n}.gz").read_bytes()))
    return mirror


def _left_behind(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_sources_pin_the_canonical_mnist_checksums():
    """The pins are those of the shared copy's README (the canonical uncompressed files)."""
    readme = (SHARED / "README.md").read_text() if SHARED.is_dir() else None
    assert len(PINS) == 4
    for name, pin in PINS.items():
        assert len(pin["sha256"]) == 64
        if readme is not None:
            assert f"{pin['sha256']}  {name}" in readme
    assert SOURCES["cifar10"]["md5"] == "c58f30108f718f92721af3b95e74349a"
    assert SOURCES["cifar10"]["size"] == 170498071


def test_relative_file_mirrors_resolve_against_the_repository_root():
    assert F.resolve_mirror("file://../shared/data/mnist") == \
        "file://" + str((REPO.parent / "shared" / "data" / "mnist").resolve()) + "/"
    assert F.resolve_mirror("file:///abs/dir") == "file:///abs/dir/"
    assert F.resolve_mirror("https://host/x") == "https://host/x/"
    with pytest.raises(F.FetchError, match="ftp://host"):
        F.resolve_mirror("ftp://host/")


@needs_shared
def test_fetch_through_a_relative_file_mirror_installs_verified_mnist(tmp_path, capsys):
    """`make data MIRRORS=file://../shared/data/mnist`: four uncompressed files whose SHA-256
    is the pinned one, readable as MNIST; a second run verifies and downloads nothing."""
    rc = F.main(["--mirror", "file://../shared/data/mnist", "--dataset", "mnist",
                 "--data-dir", str(tmp_path / "data")])
    assert rc == 0
    dest = tmp_path / "data" / "mnist"
    assert _left_behind(dest) == sorted(PINS)  # no .part, .url or temporary file left
    for name, pin in PINS.items():
        assert F.sha256_file(dest / name) == pin["sha256"]
        assert (dest / name).stat().st_size == pin["size"]
    data = load_mnist(dest)
    assert data["x_train"].shape == (60000, 28, 28) and data["y_test"].shape == (10000,)
    capsys.readouterr()
    assert F.main(["--mirror", "file:///nonexistent", "--dataset", "mnist",
                   "--data-dir", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().err.count("present, SHA-256 verified") == 4


@needs_shared
@pytest.mark.parametrize("tamper", ["corrupt_gz_content", "truncated_gz", "corrupt_plain",
                                    "truncated_plain"])
def test_a_tampered_mirror_file_is_refused_and_deleted(tmp_path, tamper):
    """The error names the file and both hashes (or the broken gzip); nothing is installed
    and no partial download is left to be resumed."""
    name = "t10k-labels-idx1-ubyte"
    plain = tamper.endswith("plain")
    mirror = _mirror_copy(tmp_path, (name,), gz=not plain)
    raw = gzip.decompress((SHARED / f"{name}.gz").read_bytes())
    if tamper == "corrupt_gz_content":  # a valid gzip of a file with one label changed
        bad = bytearray(raw)
        bad[100] = (bad[100] + 1) % 10
        (mirror / f"{name}.gz").write_bytes(gzip.compress(bytes(bad)))
        got = hashlib.sha256(bytes(bad)).hexdigest()
    elif tamper == "truncated_gz":
        blob = (mirror / f"{name}.gz").read_bytes()
        (mirror / f"{name}.gz").write_bytes(blob[: len(blob) // 2])
    elif tamper == "corrupt_plain":
        bad = bytearray(raw)
        bad[-1] = (bad[-1] + 1) % 10
        (mirror / name).write_bytes(bytes(bad))
        got = hashlib.sha256(bytes(bad)).hexdigest()
    else:
        (mirror / name).write_bytes(raw[:-100])
        got = hashlib.sha256(raw[:-100]).hexdigest()
    with pytest.raises(F.ChecksumError) as err:
        F.fetch_mnist(tmp_path / "data", _spec((name,)), [_url(mirror) + "/"])
    msg = str(err.value)
    assert name in msg and str(mirror) in msg
    if tamper == "truncated_gz":
        assert "not a whole gzip file" in msg
    else:
        assert got in msg and PINS[name]["sha256"] in msg
    assert _left_behind(tmp_path / "data" / "mnist") == []


@needs_shared
def test_a_bad_mirror_falls_through_to_a_good_one(tmp_path):
    name = "t10k-labels-idx1-ubyte"
    bad = _mirror_copy(tmp_path / "a", (name,))
    (bad / f"{name}.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 10))
    dest = F.fetch_mnist(tmp_path / "data", _spec((name,)), [_url(bad) + "/",
                                                            _url(SHARED) + "/"])
    assert F.sha256_file(dest / name) == PINS[name]["sha256"]


@needs_shared
def test_resume_of_a_partial_part_file(tmp_path):
    """A .part from the same mirror is continued, not restarted: the mirror's first bytes are
    garbled after the part was written, so only a resumed download can match the pin."""
    name = "train-labels-idx1-ubyte"
    mirror = _mirror_copy(tmp_path, (name,), gz=False)
    raw = (mirror / name).read_bytes()
    dest = tmp_path / "data" / "mnist"
    dest.mkdir(parents=True)
    half = len(raw) // 2
    (dest / f"{name}.part").write_bytes(raw[:half])
    # the part came from this mirror, under the name tried second (.gz is tried first)
    (dest / f"{name}.part.url").write_text(_url(mirror) + "/" + name + "\n")
    (mirror / name).write_bytes(b"\xff" * half + raw[half:])
    F.fetch_mnist(tmp_path / "data", _spec((name,)), [_url(mirror) + "/"])
    assert F.sha256_file(dest / name) == PINS[name]["sha256"]
    assert _left_behind(dest) == [name]


@needs_shared
def test_a_stale_part_is_retried_from_zero(tmp_path):
    name = "train-labels-idx1-ubyte"
    mirror = _mirror_copy(tmp_path, (name,), gz=False)
    dest = tmp_path / "data" / "mnist"
    dest.mkdir(parents=True)
    (dest / f"{name}.part").write_bytes(b"garbage" * 100)
    (dest / f"{name}.part.url").write_text(_url(mirror) + "/" + name + "\n")
    F.fetch_mnist(tmp_path / "data", _spec((name,)), [_url(mirror) + "/"])
    assert F.sha256_file(dest / name) == PINS[name]["sha256"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connections are refused


def test_offline_fails_at_once_listing_every_mirror(tmp_path, capsys):
    port = _closed_port()
    mirrors = [f"http://127.0.0.1:{port}/mnist/", f"http://127.0.0.1:{port}/other/"]
    start = time.monotonic()
    rc = F.main(["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--timeout", "5",
                 *(a for m in mirrors for a in ("--mirror", m))])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert rc == 1 and elapsed < 5
    assert "could not be fetched from any mirror" in err
    for m in mirrors:
        assert m + "train-images-idx3-ubyte.gz: unreachable" in err
    assert not list((tmp_path / "data" / "mnist").glob("*-ubyte"))


def test_a_missing_file_mirror_directory_is_skipped_at_once(tmp_path, capsys):
    missing = tmp_path / "no-such-mirror"
    rc = F.main(["--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                 "--mirror", _url(missing)])
    err = capsys.readouterr().err
    assert rc == 1 and "could not be fetched from any mirror" in err
    assert f"{missing}/train-images-idx3-ubyte.gz: no directory {missing}" in err
    # the mirror is given up at once, not asked for NAME after NAME.gz
    assert f"{missing}/train-images-idx3-ubyte:" not in err


def test_the_environment_overrides_the_mirrors(tmp_path, capsys, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv(F.ENV_MIRRORS, f"http://127.0.0.1:{port}/env/")
    assert F.main(["--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert f"http://127.0.0.1:{port}/env/" in capsys.readouterr().err


class _Server:
    """A tiny HTTP file server on 127.0.0.1 (Range: bytes=N- supported unless told not
    to), on a daemon thread that shuts itself down after 60 s whatever the test does."""

    def __init__(self, root: Path, ranges: bool = True):
        self.requests: list[tuple[str, str | None, int]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                path = root / self.path.lstrip("/")
                rng = self.headers.get("Range")
                if not path.is_file():
                    outer.requests.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                body = path.read_bytes()
                status, start = 200, 0
                if ranges and rng and rng.startswith("bytes="):
                    start = int(rng[len("bytes="):].split("-")[0])
                    if start >= len(body):
                        outer.requests.append((self.path, rng, 416))
                        self.send_error(416)
                        return
                    status = 206
                outer.requests.append((self.path, rng, status))
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(60, self.httpd.shutdown)
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@needs_shared
def test_http_download_and_range_resume(tmp_path):
    name = "train-labels-idx1-ubyte"
    mirror = _mirror_copy(tmp_path, (name,))
    blob = (mirror / f"{name}.gz").read_bytes()
    dest = tmp_path / "data" / "mnist"
    with _Server(mirror) as srv:
        # a fresh download over HTTP
        F.fetch_mnist(tmp_path / "data", _spec((name,)), [srv.url])
        assert F.sha256_file(dest / name) == PINS[name]["sha256"]
        assert srv.requests == [(f"/{name}.gz", None, 200)]
        # an interrupted one: the part holds the first bytes; the mirror's copy of them is
        # garbled afterwards, so the pin only matches if the rest came by a Range request
        (dest / name).unlink()
        cut = len(blob) // 3
        (dest / f"{name}.gz.part").write_bytes(blob[:cut])
        (dest / f"{name}.gz.part.url").write_text(f"{srv.url}{name}.gz\n")
        (mirror / f"{name}.gz").write_bytes(b"\0" * cut + blob[cut:])
        F.fetch_mnist(tmp_path / "data", _spec((name,)), [srv.url])
        assert srv.requests[-1] == (f"/{name}.gz", f"bytes={cut}-", 206)
    assert F.sha256_file(dest / name) == PINS[name]["sha256"]
    assert _left_behind(dest) == [name]
    assert not srv.thread.is_alive()


@needs_shared
def test_http_server_without_range_support_restarts_the_file(tmp_path, capsys):
    name = "t10k-labels-idx1-ubyte"
    mirror = _mirror_copy(tmp_path, (name,))
    dest = tmp_path / "data" / "mnist"
    dest.mkdir(parents=True)
    with _Server(mirror, ranges=False) as srv:
        (dest / f"{name}.gz.part").write_bytes(b"\x1f\x8b" + b"x" * 50)
        (dest / f"{name}.gz.part.url").write_text(f"{srv.url}{name}.gz\n")
        F.fetch_mnist(tmp_path / "data", _spec((name,)), [srv.url])
        assert srv.requests == [(f"/{name}.gz", "bytes=52-", 200)]
    assert "ignored the range request" in capsys.readouterr().err
    assert F.sha256_file(dest / name) == PINS[name]["sha256"]


@needs_shared
def test_http_404_tries_the_uncompressed_name_then_the_next_mirror(tmp_path):
    name = "t10k-labels-idx1-ubyte"
    empty = tmp_path / "empty"
    empty.mkdir()
    plain = _mirror_copy(tmp_path, (name,), gz=False)
    with _Server(empty) as a, _Server(plain) as b:
        F.fetch_mnist(tmp_path / "data", _spec((name,)), [a.url, b.url])
        assert [r[2] for r in a.requests] == [404, 404]
        assert b.requests == [(f"/{name}.gz", None, 404), (f"/{name}", None, 200)]
    assert F.sha256_file(tmp_path / "data" / "mnist" / name) == PINS[name]["sha256"]


def _cifar_tarball(path: Path, extra: str | None = None) -> bytes:
    """A CIFAR-10-shaped python tarball (tiny batches; the reader's layout)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
        if extra:
            names.append(extra)
        for n in names:
            body = f"batch {n}".encode()
            info = tarfile.TarInfo(n if n.startswith(("/", "..")) else
                                   f"cifar-10-batches-py/{n}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _cifar_sources(tmp_path: Path, blob: bytes, mirror: Path) -> Path:
    spec = json.loads(json.dumps(SOURCES))
    spec["cifar10"].update(sha256=hashlib.sha256(blob).hexdigest(),
                           md5=hashlib.md5(blob).hexdigest(), size=len(blob),
                           mirrors=[_url(mirror)])
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_cifar_tarball_verified_extracted_and_not_fetched_twice(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    blob = _cifar_tarball(mirror / "cifar-10-python.tar.gz")
    sources = _cifar_sources(tmp_path, blob, mirror)
    data = tmp_path / "data"
    assert F.main(["--dataset", "cifar10", "--sources", str(sources),
                   "--data-dir", str(data)]) == 0
    out = data / "cifar-10-batches-py"
    assert (out / "data_batch_3").read_bytes() == b"batch data_batch_3"
    assert sorted(p.name for p in data.iterdir()) == ["cifar-10-batches-py"]  # tarball gone
    (mirror / "cifar-10-python.tar.gz").unlink()  # a second run needs no mirror
    assert F.main(["--dataset", "cifar10", "--sources", str(sources),
                   "--data-dir", str(data)]) == 0
    assert "present, SHA-256 of every batch verified" in capsys.readouterr().err
    # an extracted file changed afterwards is noticed (and, with no mirror, an error)
    (out / "test_batch").write_bytes(b"other")
    assert F.main(["--dataset", "cifar10", "--sources", str(sources),
                   "--data-dir", str(data)]) == 1


def test_cifar_tarball_with_the_wrong_hash_or_a_stray_member_is_refused(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    blob = _cifar_tarball(mirror / "cifar-10-python.tar.gz")
    sources = _cifar_sources(tmp_path, blob, mirror)
    _cifar_tarball(mirror / "cifar-10-python.tar.gz", extra="data_batch_6")  # differs
    data = tmp_path / "data"
    # optional, but a mismatch is an error even when it was not named
    assert F.main(["--sources", str(sources), "--data-dir", str(data),
                   "--mirror", _url(mirror), "--dataset", "cifar10"]) == 1
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz: SHA-256" in err and "!= pinned" in err
    assert not (data / "cifar-10-batches-py").exists()
    assert not list(data.glob("*.part*"))
    # a tarball matching its pin but with a member outside cifar-10-batches-py/
    evil = _cifar_tarball(mirror / "cifar-10-python.tar.gz", extra="../evil")
    sources = _cifar_sources(tmp_path, evil, mirror)
    assert F.main(["--sources", str(sources), "--data-dir", str(data),
                   "--dataset", "cifar10"]) == 1
    assert "unexpected member '../evil'" in capsys.readouterr().err
    assert not (tmp_path / "evil").exists() and not (data / "cifar-10-batches-py").exists()


def test_optional_cifar_missing_is_a_note_unless_asked_for(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    spec = json.loads(json.dumps(SOURCES))
    del spec["mnist"]["files"]["train-images-idx3-ubyte"]  # keep the file list small
    for name in spec["mnist"]["files"]:
        spec["mnist"]["files"][name]["sha256"] = hashlib.sha256(b"x").hexdigest()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    mnist = tmp_path / "data" / "mnist"
    mnist.mkdir(parents=True)
    for name in spec["mnist"]["files"]:
        (mnist / name).write_bytes(b"x")  # "installed" files matching the pins above
    rc = F.main(["--sources", str(path), "--data-dir", str(tmp_path / "data"),
                 "--mirror", _url(empty)])
    err = capsys.readouterr().err
    assert rc == 0 and "note: cifar10 (optional) skipped" in err
    assert "ImageNet32 needs an ImageNet login" in err and "val_data" in err
    assert F.main(["--sources", str(path), "--data-dir", str(tmp_path / "data"),
                   "--mirror", _url(empty), "--dataset", "cifar10"]) == 1


def test_nothing_else_in_the_project_downloads():
    """fetch.py is the one module that opens URLs (issue 23: nothing else ever downloads)."""
    hits = []
    for path in (REPO / "src").rglob("*.py"):
        text = path.read_text()
        if any(s in text for s in ("urlopen", "urllib.request", "requests.get",
                                   "download=True")):
            hits.append(path.relative_to(REPO).as_posix())
    assert hits == ["src/depthlab/data/fetch.py"]
