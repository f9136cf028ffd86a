"""Keeps TensorFlow's C++ log lines (oneDNN, CUDA, absl) out of a command's output.

TensorFlow writes them straight to file descriptor 2 while it loads and first
runs, whatever Python does with `sys.stderr`, and `TF_CPP_MIN_LOG_LEVEL` set
from inside the process does not reach the absl logger that prints them. So
`filtered()` routes descriptor 2 through a pipe and drops lines in their
format, while Python's own `sys.stderr` (errors, progress bars) writes to the
real stderr directly.
"""

import contextlib
import os
import re
import sys
import threading

# "I0000 00:00:1796102617.422913    5034 port.cc:153] oneDNN custom operations ..."
# (the seconds field is a Unix time when absl logs before its initialisation)
_NATIVE_LOG = re.compile(
    rb"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions:)"
)


def _forward(read_fd, write_fd):
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:
            if not _NATIVE_LOG.match(line):
                os.write(write_fd, line)


@contextlib.contextmanager
def filtered():
    """While the block runs, native log lines written to descriptor 2 are dropped."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    real = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(target=_forward, args=(read_fd, real), daemon=True)
    forwarder.start()
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(real, 2)  # closes the pipe's last write end: the forwarder drains and ends
        forwarder.join(timeout=5)
        os.close(real)
