"""Arrays from command-line arguments: number lists typed inline, ``.npy`` and ``.csv`` files.

An argument is read as numbers when it is one (``0.4,0.6``; rows separated by
``;``), else as the path of a ``.npy`` or ``.csv`` file. Everything that can
go wrong (a missing file, a directory, FIFO or device, which are refused
before anything opens them so that nothing blocks, a pickled object array, a
huge-header or truncated ``.npy``, a non-numeric cell, ragged rows) is a
:class:`~kldiv.KLDivError` whose message starts with the name of the argument
(``P``, ``Q``, ``x``, ``y``), so that the command's one-line error says which
input was bad.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kldiv.errors import KLDivError

__all__ = [
    "check_output_path",
    "load_array",
    "load_rows",
    "looks_like_numbers",
    "open_regular",
    "parse_numbers",
    "read_npy",
    "renamed",
]

FILE_SUFFIXES = (".npy", ".csv")
_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z", re.IGNORECASE
)
_FIELD_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_CORE_NAME = re.compile(r"`(\w+)`")
_NPY_MAGIC = b"\x93NUMPY"
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_CSV_ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark spreadsheets write
_MAX_NPY_HEADER = 10_000  # bytes of a .npy header: NumPy's own limit (larger ones are refused)


def _fields(row: str) -> list[str]:
    return _FIELD_SEPARATOR.split(row.strip())


def looks_like_numbers(text: str) -> bool:
    """Whether ``text`` is a list of numbers: ``0.4,0.6``, ``1e-3 2``, ``-inf,0;0,0``.

    Args:
        text: a command-line argument.

    Returns:
        True when every ``;``-separated row is a non-empty list of numbers
        separated by commas and/or spaces.

    Examples:
        >>> looks_like_numbers("0.4, 0.6"), looks_like_numbers("-inf,0;1,2")
        (True, True)
        >>> looks_like_numbers("p.npy"), looks_like_numbers("0.4,,0.6")
        (False, False)
    """
    rows = text.split(";")
    return all(row.strip() and all(_NUMBER.match(f) for f in _fields(row)) for row in rows)


def parse_numbers(text: str, name: str) -> np.ndarray:
    """A float64 array from a typed list: ``0.4,0.6`` is 1-D, ``0.4,0.6;0.1,0.9`` 2-D.

    Fields are separated by commas and/or spaces, rows by ``;``. Numbers are
    decimal or scientific (``1e-3``), or ``inf``, ``-inf``, ``nan``.

    Args:
        text: the typed list.
        name: the argument's name for error messages (``"P"``).

    Returns:
        A float64 array: 1-D for one row, 2-D (rows, columns) for several.

    Raises:
        KLDivError: an entry that is not a number, an empty entry, or rows of
            different lengths.

    Examples:
        >>> parse_numbers("0.4, 0.6", "P")
        array([0.4, 0.6])
        >>> parse_numbers("1,0; 0.5,0.5", "P").shape
        (2, 2)
    """
    rows = []
    for number, row in enumerate(text.split(";")):
        fields = _fields(row)
        for field in fields:
            if not _NUMBER.match(field):
                what = "an empty entry" if not field else f"{field!r}"
                raise KLDivError(
                    f"{name}: expected numbers separated by commas (rows by ';'); got {what} "
                    f"in row {number} of {text!r}"
                )
        rows.append([float(field) for field in fields])
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        counts = ", ".join(str(len(row)) for row in rows)
        raise KLDivError(f"{name}: every row must have the same length; got lengths {counts}")
    array = np.asarray(rows, dtype=np.float64)
    return array[0] if len(rows) == 1 else array


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def _not_regular(name: str, path: str, kind: str) -> KLDivError:
    why = "" if kind == "a directory" else ", which kldiv does not read (it could block forever)"
    return KLDivError(f"{name}: expected a regular file; {path!r} is {kind}{why}")


def open_regular(path: str | os.PathLike, name: str) -> BinaryIO:
    """A regular file opened for binary reading, without ever blocking.

    The path is checked with ``os.stat`` first: directories, FIFOs, devices
    (``/dev/zero``, ``/dev/stdin``), sockets and other non-regular files are
    refused before anything opens them. The open itself uses ``O_NONBLOCK``
    and the opened descriptor is checked again (``fstat``), so a path swapped
    for a FIFO in between cannot block either.

    Args:
        path: the file's path.
        name: the argument's name for error messages (``"P"``, ``"BASE"``).

    Returns:
        The open file, binary and buffered; the caller closes it.

    Raises:
        KLDivError: a missing, unreadable or non-regular file.
    """
    shown = str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KLDivError(f"{name}: no such file: {shown!r}") from None
    except OSError as err:
        raise KLDivError(f"{name}: cannot read {shown!r}: {err.strerror or err}") from None
    kind = _kind(mode)
    if kind is not None:
        raise _not_regular(name, shown, kind)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as err:
        raise KLDivError(f"{name}: cannot read {shown!r}: {err.strerror or err}") from None
    try:
        kind = _kind(os.fstat(descriptor).st_mode)
        if kind is not None:
            raise _not_regular(name, shown, kind)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def check_output_path(path: str, name: str) -> None:
    """An output path that exists must be a regular file: writing a FIFO would block.

    Args:
        path: where a file is to be written.
        name: the option's name for error messages (``"--html"``).

    Raises:
        KLDivError: the path exists and is a directory, FIFO, device or socket.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # absent (the writer creates it) or unreachable (the writer reports it)
    kind = _kind(mode)
    if kind is not None:
        raise KLDivError(f"{name}: expected the path of a file to write; {path!r} is {kind}")


def read_npy(
    file: BinaryIO, name: str, shown: str, *, mmap: bool = False
) -> np.ndarray | np.memmap:
    """The array of an open ``.npy`` file, never unpickled; a memory map with ``mmap``.

    The header is parsed with NumPy's limit on its size (a huge header is
    refused, not parsed); object dtypes are refused; a file shorter than its
    header says is reported as truncated. Empty arrays are read into memory
    (an empty region cannot be mapped).

    Args:
        file: the open file (see :func:`open_regular`), at its start.
        name: the argument's name for error messages.
        shown: the path, for error messages.
        mmap: map the data read-only instead of reading it.

    Returns:
        The array (a read-only ``np.memmap`` with ``mmap``).

    Raises:
        KLDivError: a bad magic string or header, an object array, a truncated file.
    """
    fmt = np.lib.format
    try:
        magic = file.read(len(_NPY_MAGIC))
        if magic != _NPY_MAGIC:
            raise KLDivError(
                f"{name}: {shown!r} is not a NumPy .npy file (it lacks the magic header)"
            )
        file.seek(0)
        version = fmt.read_magic(file)
        if version == (1, 0):
            header = fmt.read_array_header_1_0(file, max_header_size=_MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):
            header = fmt.read_array_header_2_0(file, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran_order, dtype = header
        if dtype.hasobject:
            raise KLDivError(
                f"{name}: {shown!r} holds Python objects (a pickled object array), which "
                "kldiv does not load; save a numeric array"
            )
        count = 1
        for length in shape:
            count *= length
        offset = file.tell()
        expected = offset + count * dtype.itemsize
        size = os.fstat(file.fileno()).st_size
        if size < expected:
            raise KLDivError(
                f"{name}: {shown!r} is truncated: its header describes {count} values of "
                f"{dtype} ({expected} bytes with the header); the file has {size} bytes"
            )
        order = "F" if fortran_order else "C"
        if mmap and count:
            return np.memmap(file, dtype=dtype, mode="r", shape=shape, order=order, offset=offset)
        data = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype, count=count)
        return data.reshape(shape, order=order).copy()
    except KLDivError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
        detail = str(err)
        if "Header info length" in detail:  # NumPy's advice (allow_pickle=True) is not ours
            detail = f"its header is larger than the {_MAX_NPY_HEADER} bytes kldiv reads"
        raise KLDivError(f"{name}: cannot read {shown!r} as a .npy file: {detail}") from None


def _load_npy(path: Path, name: str, keep_precision: bool) -> np.ndarray:
    with open_regular(path, name) as file:
        array = read_npy(file, name, str(path))
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise KLDivError(
            f"{name}: {str(path)!r} must hold real numbers; got an array of dtype {array.dtype}"
        )
    if keep_precision and array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return array.astype(array.dtype.newbyteorder("="))  # float16/32: the library's tolerance
    return array.astype(np.float64)


def _csv_lines(path: Path, name: str) -> tuple[list[str], str | None]:
    """The file's lines, blank ones and a header emptied (line numbers kept), and the header.

    The header is the first line that is neither blank nor a ``#`` comment,
    when none of its fields is a number.
    """
    try:
        with open_regular(path, name) as raw:
            text = raw.read().decode(_CSV_ENCODING)
        lines = [line if line.strip() else "" for line in text.splitlines()]
    except UnicodeDecodeError as err:
        raise KLDivError(f"{name}: {str(path)!r} is not a text file: {err.reason}") from None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if any(_NUMBER.match(field.strip()) for field in stripped.split(",")):
            return lines, None
        lines[number] = ""
        return lines, stripped
    return lines, None


def _load_csv(path: Path, name: str) -> np.ndarray:
    lines, header = _csv_lines(path, name)
    if header is not None and looks_like_numbers(header.replace(";", " ")):
        raise KLDivError(
            f"{name}: {str(path)!r} must hold comma-separated numbers; its first line "
            f"{_shorten(header)} separates them otherwise"
        )
    try:
        with warnings.catch_warnings():  # an empty file: reported below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            array = np.loadtxt(lines, delimiter=",", comments="#", ndmin=2, dtype=np.float64)
    except ValueError as err:
        detail = str(err).split("; use `usecols`")[0].rstrip(".")
        raise KLDivError(f"{name}: cannot read {str(path)!r} as numbers: {detail}") from None
    if array.size == 0:
        raise KLDivError(f"{name}: {str(path)!r} holds no numbers")
    return array


def _shorten(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def load_array(path: str, name: str, keep_precision: bool = False) -> np.ndarray:
    """A float64 array from a ``.npy`` file or a ``.csv`` file (one row per line).

    ``.npy`` files are never unpickled: their header is parsed (NumPy's size
    limit on it kept) and object arrays are refused from it. With
    ``keep_precision``, a float16 or float32 ``.npy`` array keeps its dtype,
    so that the library checks its row sums with that dtype's tolerance (a
    float16 softmax does not sum to 1 within 1e-6).
    ``.csv`` files are comma-separated numbers; lines starting with ``#`` are
    comments and a first line without any number is a header, skipped. A
    CSV file always gives a 2-D array (rows, columns).

    Args:
        path: the file's path.
        name: the argument's name for error messages.
        keep_precision: keep float16 and float32 arrays of ``.npy`` files as they are.

    Returns:
        The array, as float64 (or its own float16/float32 with ``keep_precision``).

    Raises:
        KLDivError: a missing or unreadable file, a directory, FIFO, device or
            other non-regular file (refused before it is opened: nothing
            blocks), another suffix, or content that is not real numbers.

    Examples:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> np.save(os.path.join(folder, "p.npy"), np.array([0.4, 0.6]))
        >>> load_array(os.path.join(folder, "p.npy"), "P")
        array([0.4, 0.6])
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise KLDivError(
            f"{name}: expected numbers separated by commas (e.g. 0.4,0.6) or a .npy or .csv "
            f"file; got {path!r}"
        )
    if suffix == ".npy":
        return _load_npy(file, name, keep_precision)
    return _load_csv(file, name)


def load_rows(text_or_path: str, name: str, keep_precision: bool = False) -> np.ndarray:
    """An array from a command-line argument: typed numbers, else a ``.npy``/``.csv`` path.

    Args:
        text_or_path: ``0.4,0.6`` (rows separated by ``;``) or a file path.
        name: the argument's name for error messages (``"P"``, ``"x"``).
        keep_precision: keep float16 and float32 arrays of ``.npy`` files as they are.

    Returns:
        A float64 array (1-D for one typed row; files keep their shape, CSV
        files are 2-D), or a ``.npy`` file's float16/float32 with ``keep_precision``.

    Raises:
        KLDivError: the argument is neither, or the file cannot be read.

    Examples:
        >>> load_rows("0.4,0.6", "P")
        array([0.4, 0.6])
        >>> load_rows("1e-3 0.999", "Q")
        array([0.001, 0.999])
    """
    text = text_or_path.strip()
    if looks_like_numbers(text):
        return parse_numbers(text, name)
    if any(ch in text for ch in ",;") and Path(text).suffix.lower() not in FILE_SUFFIXES:
        return parse_numbers(text, name)  # a typed list with a bad entry: say which one
    return load_array(text_or_path, name, keep_precision)


def renamed(err: KLDivError, names: dict[str, str]) -> KLDivError:
    """A library error whose argument names are those of the command line.

    The library names its arguments (`` `p` must hold probabilities…``); the
    command calls them P and Q. Names not in ``names`` are left as they are.

    Args:
        err: the library's error.
        names: library name → command-line name, e.g. ``{"p": "P", "q": "Q"}``.

    Returns:
        A KLDivError (of the same class) with the names replaced.

    Examples:
        >>> print(renamed(KLDivError("`q` must hold probabilities"), {"q": "Q"}))
        Q must hold probabilities
    """
    message = _CORE_NAME.sub(lambda m: names.get(m.group(1), m.group(0)), str(err))
    try:
        return type(err)(message)
    except TypeError:  # pragma: no cover - a subclass with another constructor
        return KLDivError(message)
