"""The user's files: inputs refused at once when they are not regular files, outputs put in
place whole or not at all.

Reading: a FIFO, a device or a directory given as a cfg, weights, image, list or names file
is an error before anything waits on it (opened non-blocking, so a FIFO without a writer
cannot hang the open; checked with fstat on the opened file, so there is no race).

Writing: on Linux the data goes into an unnamed file (O_TMPFILE) in the target's folder,
which is linked into place when it is complete; a process killed at any moment, even by
SIGKILL, leaves no partial and no temporary file. An existing target is replaced by linking
the finished file under a hidden temporary name and renaming it over the target: only a kill
in the instant between those two system calls can leave that temporary file behind. Where
O_TMPFILE or /proc is missing (other systems, some file systems), the data goes into a
hidden temporary file beside the target from the start, removed on any error, Ctrl-C,
SIGTERM or SIGHUP (the command line turns those into KeyboardInterrupt), but not on SIGKILL.
Files are created with mode 0666 less the umask, as any other program's.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tdn.errors import TdnError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


# The first bytes of files often given in the wrong place (arguments in the wrong order).
_MAGIC = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"BM", "a BMP image"), (b"II*\0", "a TIFF image"), (b"MM\0*", "a TIFF image"),
          (b"RIFF", "a RIFF file (a WebP image?)"), (b"PK\x03\x04", "a zip archive"),
          (b"\x1f\x8b", "a gzip archive"), (b"\x08\x01\x12", "an ONNX model"))


def sniff(head: bytes) -> str | None:
    """What kind of file begins with `head`, for the kinds in _MAGIC (None: another)."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def lines_of(text: str) -> list[str]:
    """Lines split on \\n only (a \\r before it stays, for the caller to strip), as Darknet's
    fgetl reads them: str.splitlines would also split at form feeds and other control
    characters, and the line numbers in messages would no longer be the file's."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def open_regular(path: str | os.PathLike[str], what: str, error: type[TdnError] = TdnError) -> io.BufferedReader:
    """`path` opened for reading in binary; `error` naming the path and `what` it should be
    when it cannot be opened or is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as failure:
        raise error(f"{os.fspath(path)}: cannot read {what}: {failure.strerror or failure}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise error(f"{os.fspath(path)}: cannot read {what}: it is {kind}, not a regular file")
    os.set_blocking(fd, True)
    return open(fd, "rb")


def read_regular(path: str | os.PathLike[str], what: str, error: type[TdnError] = TdnError) -> bytes:
    with open_regular(path, what, error) as handle:
        try:
            return handle.read()
        except OSError as failure:
            raise error(f"{os.fspath(path)}: cannot read {what}: {failure.strerror or failure}") from None


def check_output_path(path: str | os.PathLike[str] | None, what: str = "output") -> None:
    """A one-line error now, before any work, for an output path that cannot be written."""
    if path is None:
        return
    if os.fspath(path) == "":
        raise TdnError(f"the {what} path is empty: give a file name")
    target = Path(path)
    if target.is_dir():
        raise TdnError(f"{target}: the {what} is a directory: give a file name")
    if not target.parent.is_dir():
        raise TdnError(f"{target}: cannot write the {what}: folder {target.parent} does not exist")


def _unnamed(folder: Path) -> int | None:
    """A file descriptor of a new unnamed file in `folder`, or None where that is not possible."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError as failure:
        if failure.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None  # a file system or kernel without O_TMPFILE
        raise


def _hidden_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _link_into_place(fd: int, target: Path) -> None:
    """Give the unnamed file `fd` the name `target`, replacing any file there."""
    # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names the open file itself; os.link makes
    # that call only when given a directory descriptor (else it calls link(), which would
    # try to link the /proc symbolic link and fail with EXDEV).
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        def link(name: Path) -> None:
            os.link(f"self/fd/{fd}", name, src_dir_fd=proc, follow_symlinks=True)
        try:
            link(target)
            return
        except FileExistsError:
            pass
        while True:
            hidden = _hidden_name(target)
            try:
                link(hidden)
                break
            except FileExistsError:
                continue
        try:
            os.replace(hidden, target)
        except BaseException:
            hidden.unlink(missing_ok=True)
            raise
    finally:
        os.close(proc)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], binary: bool = False, what: str = "output") -> Iterator[IO]:
    """A file handle whose contents appear at `path` only when the block ends without error."""
    check_output_path(path, what)
    target = Path(path)
    hidden: Path | None = None
    try:
        fd = _unnamed(target.parent)
        if fd is None:
            hidden = _hidden_name(target)
            fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as failure:
        raise TdnError(f"{target}: cannot write the {what}: {failure.strerror or failure}") from None
    try:
        handle = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            if hidden is None:
                _link_into_place(handle.fileno(), target)
        if hidden is not None:
            os.replace(hidden, target)
            hidden = None
    except OSError as failure:
        raise TdnError(f"{target}: cannot write the {what}: {failure.strerror or failure}") from None
    finally:
        if hidden is not None:
            hidden.unlink(missing_ok=True)
