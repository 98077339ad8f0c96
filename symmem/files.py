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
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from symmem.errors import SymmemError
from symmem.limits import MAX_SOURCE_BYTES

#: temporary files being written now: removed when SIGTERM or SIGHUP ends the process
_LIVE: set[str] = set()
#: the signals whose default action ends the process and which a program may catch
#: (SIGINT arrives as KeyboardInterrupt, which the ``finally`` below already handles)
CLEANUP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_installed: set[int] = set()


def _on_signal(signum: int, frame: Any) -> None:
    """Remove every temporary file being written, then die of the signal as the default
    action would (the exit status still says which signal ended the process)."""
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _LIVE.clear()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_cleanup() -> None:
    """Catch SIGTERM and SIGHUP while a file is being written, where nobody else handles
    them (a handler can only be set from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in CLEANUP_SIGNALS:
        if sig in _installed:
            continue
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
                _installed.add(sig)


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
    _install_cleanup()
    _LIVE.add(tmp)
    try:
        yield tmp
        os.chmod(tmp, file_mode(target))
        os.replace(tmp, target)
    except OSError as exc:
        raise SymmemError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        _LIVE.discard(tmp)
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


@contextlib.contextmanager
def text_output(target: str) -> Iterator[IO[str]]:
    """Where a command writes text: ``-`` is standard output, anything else a file written
    atomically (:func:`atomic_text`)."""
    if target == "-":
        yield sys.stdout
        return
    with atomic_text(target) as fh:
        yield fh


def read_regular_file(
    path: str | Path, error: type[SymmemError] = SymmemError, limit: int = MAX_SOURCE_BYTES
) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (docs/limits.md).

    A FIFO would block forever and ``/dev/zero`` never ends: anything but a regular file is
    refused before it is opened, and a file is read no further than its limit."""
    p = Path(path)
    try:
        info = os.stat(p)
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(info.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise error(f"{p}: not a file ({kind}); give the path of a file")
    too_big = error(
        f"{p}: larger than {limit:,} bytes; symmem reads files of up to {limit:,} bytes "
        "(docs/limits.md)"
    )
    if info.st_size > limit:
        raise too_big
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{p}: cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
