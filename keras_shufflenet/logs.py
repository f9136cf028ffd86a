"""Keeps other libraries' log lines out of the programs' output.

TensorFlow, its converter and LiteRT write to file descriptor 2 from C++
(oneDNN, CUDA and CPU-feature notices while TensorFlow loads, even under
`TF_CPP_MIN_LOG_LEVEL=3`; the converter's `fully_quantize: ...`; LiteRT's
`INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`), and from Python
through `warnings` and the `tensorflow` and `absl` loggers. Every program of
the project (the `keras-shufflenet` command, `training/`, `tflite/`,
`benchmarks/`) keeps them out with this module, unless run with `--verbose`:

    from keras_shufflenet import logs

    logs.quiet_program()  # first, before TensorFlow loads

or, around one piece of work, `with logs.quiet(): ...`. Descriptor 2 then goes
through a pipe that drops lines in those libraries' formats, while Python's
`sys.stderr` (errors, tracebacks, progress bars) writes to the real stderr
directly; warnings raised outside the project's own code are ignored, and
Python loggers (`tensorflow`'s, `absl`'s) show errors only. An exception's message
still reaches the user, as do native fatal (`F...`) lines.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import warnings

# Lines that other libraries write to descriptor 2.
FOREIGN_LINE = re.compile(
    # absl/TensorFlow C++ logging below fatal: "I0000 00:00:1796102617.422913  5034 port.cc:153] ..."
    # (the seconds field is a Unix time when absl logs before its initialisation)
    rb"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions:"  # cpu_feature_guard's second line
    rb"|(INFO|VERBOSE): "  # LiteRT / TFLite
    rb"|fully_quantize: \d+, inference_type: )"  # the TFLite converter's quantizer
)
# Modules whose warnings are the project's own, and stay (a program run with
# `python -m` is `__main__`).
_OWN_MODULES = r"(keras_shufflenet|training|tflite|benchmarks|__main__)(\.|$)"

_depth = 0  # quiet() blocks entered, the outermost does the work
_program = None  # the ExitStack of quiet_program()


def verbose_requested(argv=None):
    """Whether the command line `argv` (default: `sys.argv[1:]`) asks for
    `--verbose` (argparse's switch, or absl's `--verbose[=true]`).

    Read before any parser runs, because TensorFlow logs as it loads."""
    argv = sys.argv[1:] if argv is None else argv
    verbose = False
    for arg in argv:
        if arg == "--":
            break
        if arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1"):
            verbose = True
        elif arg in ("--noverbose", "--verbose=false", "--verbose=False", "--verbose=0"):
            verbose = False
    return verbose


def _forward(read_fd, write_fd):
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:
            if not FOREIGN_LINE.match(line):
                os.write(write_fd, line)


@contextlib.contextmanager
def _native_lines_dropped():
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


@contextlib.contextmanager
def _python_lines_dropped():
    # logging.disable, not logger levels: absl sets its levels again when it parses flags.
    disabled = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", module=_OWN_MODULES)
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(disabled)


@contextlib.contextmanager
def quiet():
    """While the block runs, other libraries' log lines and warnings are kept
    out (see the module's docstring); blocks nest."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's logs after it loads
    _depth = 1
    try:
        with _native_lines_dropped(), _python_lines_dropped():
            yield
    finally:
        _depth = 0
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def quiet_program(argv=None):
    """Keeps other libraries' lines out until the process ends, unless the
    command line `argv` (default: `sys.argv[1:]`) says `--verbose`. Call it
    first in a program, before TensorFlow is imported. Returns whether the
    lines are kept out."""
    global _program
    if _program is not None:
        return True
    if verbose_requested(argv):
        return False
    import atexit

    _program = contextlib.ExitStack()
    _program.enter_context(quiet())
    atexit.register(_program.close)
    return True


__all__ = ["FOREIGN_LINE", "quiet", "quiet_program", "verbose_requested"]
