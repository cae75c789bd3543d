"""Ports for the servers tests and benches start: each one handed to one process of ours at a time.

Asking the kernel for a free port (binding port 0) and closing the socket leaves a window before the server binds
it, often seconds while a stack starts, in which another test worker's server, or a client connection's local end,
can take the same port: CI once saw a service's readiness probe answered by another test's SMTP sink. So ports are
chosen below the kernel's ephemeral range, which it never hands to port 0 or to a client, and each is claimed by
holding a lock file until this process ends, so no other process of ours picks it meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

_RANGE = range(20000, 32768)  # Linux's ephemeral range starts at 32768 unless an administrator moved it
_LOCKS = Path(tempfile.gettempdir()) / "send-devkit-ports"
_HELD: dict[int, int] = {}  # port -> descriptor of its lock file, open for this process's life
_ATTEMPTS = 500


def _claimed(port: int) -> bool:
    try:
        descriptor = os.open(_LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    except PermissionError:  # another user's lock file
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False
    _HELD[port] = descriptor
    return True


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, that no other process using this function is given while this one lives."""
    _LOCKS.mkdir(exist_ok=True)
    with contextlib.suppress(OSError):
        _LOCKS.chmod(0o1777)  # shared by every user's test runs, like /tmp itself
    for _ in range(_ATTEMPTS):
        port = random.randrange(_RANGE.start, _RANGE.stop)
        if port in _HELD or not _claimed(port):
            continue
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {_RANGE.start}-{_RANGE.stop - 1} after {_ATTEMPTS} tries")
