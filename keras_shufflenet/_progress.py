"""Progress bars on stderr, so that stdout keeps only results."""

import contextlib
import sys

import keras


class StderrProgbar:
    """A `keras.utils.Progbar` drawn on stderr, so stdout keeps only results."""

    def __init__(self, target, unit_name="step"):
        with contextlib.redirect_stdout(sys.stderr):
            self._bar = keras.utils.Progbar(target, unit_name=unit_name)

    def update(self, current):
        with contextlib.redirect_stdout(sys.stderr):
            self._bar.update(current)


class NoProgress:
    """Stands in for a progress bar when none is shown."""

    def update(self, current):
        del current
