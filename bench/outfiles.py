"""Output files of the read commands (``export -o``, ``report --out``): checked before anything
is written, written atomically, no temporary file left behind on any error."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError


def check_output(path: Path, flag: str, make_parents: bool = False) -> None:
    """Refuse (one line) an output file that cannot be written: a missing parent directory
    (unless ``make_parents``: then the nearest existing one must be a writable directory), a
    directory, a parent that is not a directory, no write permission."""
    import os

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BenchError(f"{flag} {str(path)!r} is a directory (give a file name)")
    if make_parents:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if not parent.exists():
        raise BenchError(f"{flag} {str(path)!r}: the directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise BenchError(f"{flag} {str(path)!r}: {str(parent)!r} is not a directory")
    if path.exists() and not path.is_file():
        raise BenchError(f"{flag} {str(path)!r} is not a regular file")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BenchError(f"{flag} {str(path)!r} is not writable (permission denied)")


def write_atomic(path: Path, write, flag: str) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it over ``path``; on
    any failure the temporary file is removed and the error is one line."""
    import os
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise BenchError(f"{flag} {str(path)!r}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


#: options whose value may start with "-" (a negative threshold is an error to report, not a flag)
