"""Hostile file arguments: FIFOs, devices, directories, pickles, damaged ``.npy`` files.

Every case must end promptly with the command's one ``kldiv: error:`` line
naming the argument; nothing may block (a FIFO without a writer blocks
``open`` forever), so the commands that could hang run in a subprocess with a
timeout: a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kldiv.cli._io import load_array, open_regular, read_npy
from kldiv.errors import KLDivError
from tests._cli import error_line, run_kldiv, single_error_line

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")

PROMPTLY_S = 60.0
"""Seconds a refused input may take (a subprocess that imports kldiv, on a shared machine)."""


def _huge_header(path: Path) -> None:
    """A version 2.0 .npy whose header claims 60 000 bytes (NumPy refuses over 10 000)."""
    body = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }" + " " * 60_000 + "\n"
    path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body)) + body.encode())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    np.save(tmp / "good.npy", rng.standard_normal((30, 6)).astype(np.float32))
    np.save(tmp / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp / "nan.npy", np.full((30, 6), np.nan, np.float32))
    np.save(tmp / "ints.npy", np.ones((30, 6), np.int64))
    np.save(tmp / "text.npy", np.array([["a"] * 6] * 30))
    np.save(tmp / "p.npy", np.array([0.4, 0.6]))
    np.save(tmp / "p_nan.npy", np.array([0.4, np.nan]))
    good = (tmp / "good.npy").read_bytes()
    (tmp / "truncated.npy").write_bytes(good[:200])
    (tmp / "header_only.npy").write_bytes(good[:128])
    _huge_header(tmp / "huge_header.npy")
    (tmp / "folder.npy").mkdir()
    (tmp / "folder.csv").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp / "fifo.npy")
        os.mkfifo(tmp / "fifo.csv")
    if Path("/dev/zero").exists():
        (tmp / "zero.npy").symlink_to("/dev/zero")
    return tmp


def _refused(*args: str, cwd: Path) -> str:
    """Runs ``kldiv ARGS``; it must fail with exit code 1, promptly, in one error line."""
    start = time.monotonic()
    done = run_kldiv(*args, cwd=cwd, timeout=PROMPTLY_S)
    assert time.monotonic() - start < PROMPTLY_S
    assert done.returncode == 1, done.stderr
    return single_error_line(done.stdout, done.stderr)


@needs_fifo
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("compare", "fifo.npy", "good.npy"),
            "BASE: expected a regular file; 'fifo.npy' is a FIFO",
        ),
        (
            ("compare", "good.npy", "fifo.npy"),
            "TEST: expected a regular file; 'fifo.npy' is a FIFO",
        ),
        (("compare", "good.npy", "good.npy", "--tokens", "fifo.npy"), "--tokens: expected a"),
        (("probs", "fifo.npy", "0.5,0.5"), "P: expected a regular file; 'fifo.npy' is a FIFO"),
        (("probs", "0.5,0.5", "fifo.csv"), "Q: expected a regular file; 'fifo.csv' is a FIFO"),
        (("samples", "fifo.csv", "1,2,3"), "x: expected a regular file; 'fifo.csv' is a FIFO"),
        (("compare", "good.npy", "good.npy", "--html", "fifo.csv"), "--html: expected the path"),
    ],
)
def test_a_fifo_is_refused_without_blocking(folder, args, message):
    assert message in _refused(*args, cwd=folder)


@needs_dev_zero
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compare", "/dev/zero", "good.npy"), "BASE: expected a regular file; '/dev/zero' is a"),
        (("compare", "zero.npy", "good.npy"), "'zero.npy' is a character device"),
        (("probs", "zero.npy", "0.5,0.5"), "P: expected a regular file; 'zero.npy' is a character"),
    ],
)
def test_a_device_is_refused(folder, args, message):
    assert message in _refused(*args, cwd=folder)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "folder.npy", "good.npy"], "BASE: expected a regular file; 'folder.npy' is a"),
        (["probs", "folder.csv", "0.5,0.5"], "P: expected a regular file; 'folder.csv' is a dir"),
        (["compare", "obj.npy", "good.npy"], "BASE: 'obj.npy' holds Python objects"),
        (["probs", "obj.npy", "0.5,0.5"], "P: 'obj.npy' holds Python objects"),
        (["compare", "good.npy", "truncated.npy"], "TEST: 'truncated.npy' is truncated"),
        (["compare", "good.npy", "header_only.npy"], "TEST: 'header_only.npy' is truncated"),
        (["probs", "truncated.npy", "0.5,0.5"], "P: 'truncated.npy' is truncated"),
        (["compare", "huge_header.npy", "good.npy"], "header is larger than the 10000 bytes"),
        (["probs", "huge_header.npy", "0.5,0.5"], "P: cannot read 'huge_header.npy'"),
        (["compare", "ints.npy", "good.npy"], "BASE: expected floating-point logits; got dtype"),
        (["compare", "text.npy", "good.npy"], "BASE: expected floating-point logits; got dtype"),
        (["probs", "text.npy", "0.5,0.5"], "P: 'text.npy' must hold real numbers"),
        (["compare", "nan.npy", "good.npy"], "BASE must hold finite logits"),
        (["probs", "p_nan.npy", "0.5,0.5"], "P must hold probabilities"),
    ],
)
def test_bad_files_get_one_clear_line(folder, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(folder)
    line = error_line(capsys, argv, 1)
    assert message in line
    assert "allow_pickle=True" not in line  # NumPy's advice is not for a command's user


def test_pickles_are_never_loaded(folder, monkeypatch):
    """Not even a call to ``pickle``: the object dtype is refused from the header."""
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle.load was called")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    with pytest.raises(KLDivError, match="holds Python objects"):
        load_array(str(folder / "obj.npy"), "P")


@needs_fifo
def test_open_regular_refuses_a_fifo_in_process(folder):
    """The library-level opener: a FIFO is refused before ``open`` (which would block)."""
    with pytest.raises(KLDivError, match=r"^P: expected a regular file; .* is a FIFO"):
        open_regular(folder / "fifo.npy", "P")


def test_read_npy_round_trips_and_maps(folder):
    expected = np.load(folder / "good.npy")
    with open_regular(folder / "good.npy", "BASE") as file:
        loaded = read_npy(file, "BASE", "good.npy")
    np.testing.assert_array_equal(loaded, expected)
    with open_regular(folder / "good.npy", "BASE") as file:
        mapped = read_npy(file, "BASE", "good.npy", mmap=True)
    assert isinstance(mapped, np.memmap)
    assert not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, expected)


def test_fortran_order_big_endian_and_empty_arrays(tmp_path):
    array = np.asfortranarray(np.arange(12.0).reshape(3, 4)).astype(">f8")
    np.save(tmp_path / "f.npy", array)
    np.save(tmp_path / "empty.npy", np.zeros((0, 5), np.float32))
    for mmap in (False, True):
        with open_regular(tmp_path / "f.npy", "P") as file:
            np.testing.assert_array_equal(read_npy(file, "P", "f.npy", mmap=mmap), array)
        with open_regular(tmp_path / "empty.npy", "P") as file:
            assert read_npy(file, "P", "empty.npy", mmap=mmap).shape == (0, 5)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "secret.npy"
    np.save(path, np.zeros(3))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything
            pytest.skip("running with permission to read everything")
        with pytest.raises(KLDivError, match="P: cannot read"):
            load_array(str(path), "P")
    finally:
        path.chmod(0o600)
