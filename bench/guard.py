"""Before a sweep writes anything: prove the results directory takes a record, and hold it.

* ``probe(results)``: create the directory, then create, write, fsync and rename a probe file
  there and remove it -- the same steps as writing a record (``bench.store.write_json_atomic``),
  so a file given as ``--results``, a read-only mount, a full disk or a missing permission is
  refused in one line before a case trains, not after.
* ``RunLock(results, suite)``: one run per results directory and suite. The lock is a file
  ``<results>/.lock-<suite>`` created exclusively, holding the PID, host and start time of the
  holder; a second run refuses naming them (or waits, ``wait=True``). A lock whose PID is dead
  on this host is stale (a run killed with SIGKILL): it is taken over with a note. A lock of
  another host is never judged stale from here (its PID means nothing on this machine).
* ``clean_stale_tmp()``: remove the per-case temporary folders (``pinnbench-<pid>-*``) of
  runners that are dead, so a runner killed mid-case leaves nothing behind in the temp dir.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench.errors import BenchError

#: temporary folder of one case of the runner with this PID (bench.runner.run_case)
TMP_PREFIX = "pinnbench-"


def tmp_prefix() -> str:
    return f"{TMP_PREFIX}{os.getpid()}-"


def _why(e: OSError) -> str:
    names = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
             errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
             errno.ENOTDIR: "a part of the path is a file, not a directory",
             errno.EEXIST: "exists and is not a directory", errno.EDQUOT: "disk quota exceeded"}
    return names.get(e.errno, e.strerror or str(e))


def probe(results: Path) -> None:
    """Refuse (BenchError, one line) unless a record can be written under ``results``."""
    results = Path(results)
    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {str(results)!r} is not a directory (give a directory for the records)")
    tmp = results / f".probe-{os.getpid()}.tmp"
    dest = results / f".probe-{os.getpid()}"
    try:
        results.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b'{"probe": true}\n' * 64)  # a record-sized write: ENOSPC shows here
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        os.unlink(dest)
    except OSError as e:
        for p in (tmp, dest):
            try:
                os.unlink(p)
            except OSError:
                pass
        raise BenchError(f"--results {str(results)!r} cannot take a record ({_why(e)}); nothing was run "
                         "(give a writable directory)") from None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, ValueError):
        return False
    return True


class Interrupted(BenchError):
    """Ctrl-C while waiting for the lock: one line, exit 130 like an interrupted run."""

    exit_code = 130


class RunLock:
    """``with RunLock(results, suite, wait=False):`` -- see the module docstring."""

    def __init__(self, results: Path, suite: str, wait: bool = False, poll_s: float = 1.0, note=None):
        self.path = Path(results) / f".lock-{suite}"
        self.wait, self.poll_s = wait, poll_s
        self.note = note or (lambda msg: sys.stderr.write(f"bench: note: {msg}\n"))
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.held = False

    def _holder(self, path: Path | None = None) -> dict | None:
        try:
            d = json.loads(Path(path or self.path).read_text())
            return d if isinstance(d, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable or half-written: a live holder we cannot name

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise BenchError(f"cannot create the lock {str(self.path)!r} ({_why(e)})") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(self.me, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _stale(self, h: dict) -> bool:
        pid = h.get("pid")
        return (h.get("host") == self.me["host"] and isinstance(pid, int) and not isinstance(pid, bool)
                and pid != os.getpid() and not pid_alive(pid))

    def _take_over(self, h: dict) -> bool:
        """Move the stale lock aside and check it is the one judged stale (another run may
        have taken it over meanwhile: then put it back)."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        if self._holder(aside) != h:  # not the lock we judged: restore it if the place is free
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            os.unlink(aside)
            return False
        os.unlink(aside)
        self.note(f"took over the stale lock {str(self.path)!r} of PID {h.get('pid')} on {h.get('host')} "
                  f"(started {h.get('started')}; that process is gone)")
        return True

    def acquire(self) -> None:
        announced = False
        while True:
            if self._create():
                self.held = True
                return
            h = self._holder()
            if h is None:
                continue  # released meanwhile
            if self._stale(h):
                self._take_over(h)
                continue
            who = (f"PID {h.get('pid', '?')} on host {h.get('host', '?')}, started {h.get('started', '?')}"
                   if h else "a holder that cannot be read")
            if not self.wait:
                raise BenchError(f"results directory {str(self.path.parent)!r} is in use by another run of "
                                 f"this suite ({who}; lock {self.path.name}): wait for it, pass --wait, or "
                                 "give another --results")
            if not announced:
                self.note(f"waiting for the run holding {str(self.path)!r} ({who})")
                announced = True
            try:
                time.sleep(self.poll_s)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted while waiting for {str(self.path)!r} ({who}); nothing was run") \
                    from None

    def release(self) -> None:
        if self.held and self._holder() == self.me:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        self.held = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


_TMP_RE = re.compile(rf"^{TMP_PREFIX}(\d+)-")


def clean_stale_tmp(tmpdir: str | None = None) -> list[Path]:
    """Remove ``pinnbench-<pid>-*`` folders of dead runners (of this user); what was removed."""
    root = Path(tmpdir or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_RE.match(p.name)
        if not m or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            if p.is_dir() and not p.is_symlink() and p.stat().st_uid == os.getuid():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        except OSError:
            pass
    return removed
