import pytest

from depthlab.provenance import atomic_output, config_hash, provenance_attrs


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_output(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    attrs = provenance_attrs({"x": 1}, seed=3)
    assert attrs["seed"] == 3 and '"x": 1' in attrs["config"]


def test_atomic_output_is_readable_by_others(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "shared.h5") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.h5").stat().st_mode & 0o777 == 0o644
