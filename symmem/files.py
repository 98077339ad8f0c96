"""Writing output files so that a reader never sees half of one.

Every file symmem writes (sweep tables, plots, imported ``.mem`` files) is written
to a temporary file beside its target and renamed over it (:func:`atomic_path`):
on any error, or an interrupt, the temporary file is removed and the target is
left as it was.  A new file gets the usual mode (0666 less the umask); an existing
file keeps its own.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

from symmem.errors import SymmemError


def file_mode(target: str) -> int:
    """The mode a new file would get (0666 less the umask), or the existing file's mode."""
    try:
        return os.stat(target).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str, *, suffix: str = "") -> Iterator[str]:
    """A temporary path beside ``target``; renamed to ``target`` when the block ends well.

    A directory as the target, a missing directory, or a file system that refuses
    the write is a :class:`SymmemError` naming the target; nothing is left behind.
    """
    if os.path.isdir(target):
        raise SymmemError(f"{target}: is a directory; give the path of the file to write")
    directory = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix or ".tmp", dir=directory)
    except OSError as exc:
        raise SymmemError(f"{target}: cannot write: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode(target))
        os.replace(tmp, target)
    except OSError as exc:
        raise SymmemError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_text(target: str, *, suffix: str = "") -> Iterator[IO[str]]:
    """An open text file (UTF-8) whose contents replace ``target`` when the block ends well."""
    with (
        atomic_path(target, suffix=suffix) as tmp,
        open(tmp, "w", encoding="utf-8", newline="") as fh,
    ):
        yield fh


@contextlib.contextmanager
def atomic_binary(target: str, *, suffix: str = "") -> Iterator[IO[bytes]]:
    """An open binary file whose contents replace ``target`` when the block ends well."""
    with atomic_path(target, suffix=suffix) as tmp, open(tmp, "wb") as fh:
        yield fh
