"""Reading a ``.npz`` archive from an untrusted source in bounded memory.

``numpy.load`` trusts what a file declares: a zip member's decompressed
size, an ``.npy`` header's shape. A file of a few kilobytes can declare
gigabytes (a zip bomb, a shape of ``2**40``), and the allocation happens
before anything is checked. :class:`Archive` checks every declaration
against the bytes actually present and against caps before allocating, so
the memory a read takes is bounded by a small multiple of the file's size.
It opens only regular files (a FIFO would block the reader forever).
"""

import io
import os
import stat
import zipfile

import numpy as np

# skae writes members uncompressed; a compressed member may expand to at
# most this many times its stored size (plus the slack below).
MAX_COMPRESSION_RATIO = 16
_RATIO_SLACK = 2**20
# The JSON header holds hyperparameters and small attributes (feature names
# included); a model's arrays are separate members.
MAX_HEADER_BYTES = 32 * 2**20
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


class ArchiveError(ValueError):
    """The archive is malformed or declares more than it holds."""


def open_regular(path):
    """A binary file object for ``path``, which must be a regular file.

    Opened without blocking and checked with ``fstat`` on the open
    descriptor, so a FIFO or device (also one swapped in after a check)
    is refused instead of blocking the reader.
    """
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"Is a directory: {os.fspath(path)!r}")
        if not stat.S_ISREG(mode):
            raise ArchiveError("not a regular file (a FIFO, socket or device)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Archive:
    """The members of a zip archive of ``.npy`` arrays, read with limits."""

    def __init__(self, path):
        self._file = open_regular(path)
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            magic = self._file.read(len(_NPY_MAGIC))
            self._file.seek(0)
            if magic == _NPY_MAGIC:
                raise ArchiveError("a single numpy array, not a skae model file")
            if not magic.startswith(_ZIP_MAGIC):
                raise ArchiveError("not a zip archive")
            self._zip = zipfile.ZipFile(self._file)
            self.files = {
                info.filename[: -len(".npy")]: info
                for info in self._zip.infolist()
                if info.filename.endswith(".npy")
            }
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._zip.close()
        self._file.close()

    def read(self, name, max_bytes=None):
        """Member ``name`` as a numpy array (numeric or bool dtypes only)."""
        info = self.files[name]
        declared = info.file_size
        if info.compress_type != zipfile.ZIP_STORED and declared > (
            MAX_COMPRESSION_RATIO * info.compress_size + _RATIO_SLACK
        ):
            raise ArchiveError(
                f"member {name!r} declares {declared} bytes from "
                f"{info.compress_size} compressed bytes (a zip bomb?)"
            )
        if max_bytes is not None and declared > max_bytes:
            raise ArchiveError(
                f"member {name!r} declares {declared} bytes, over the limit of "
                f"{max_bytes} bytes"
            )
        with self._zip.open(info) as f:
            return _read_npy(f, name, declared)


def _read_npy(f, name, declared):
    """The array in an open ``.npy`` member whose size is ``declared``."""
    f = io.BufferedReader(f) if not hasattr(f, "peek") else f
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ArchiveError(f"member {name!r} has npy format version {version}")
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufc":
        raise ArchiveError(f"member {name!r} has unsupported dtype {dtype}")
    count = 1
    for n in shape:  # Python ints: no overflow
        count *= int(n)
    nbytes = count * dtype.itemsize
    header_bytes = f.tell()
    if nbytes != declared - header_bytes:
        raise ArchiveError(
            f"member {name!r} declares shape {shape} of {dtype} ({nbytes} "
            f"bytes) but holds {declared - header_bytes} bytes"
        )
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8)) if count else b""
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise ArchiveError(f"member {name!r} is truncated")
        got += n
    return array
