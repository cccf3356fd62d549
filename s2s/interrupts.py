"""Stopping a training run by signal without losing it (SIGINT: Ctrl-C; SIGTERM: a scheduler).

The first signal asks the loop to stop after the current update; the loop evaluates if that
update is an evaluation step, saves ``last.pt`` and raises ``TrainingInterrupted``. A second
signal while a checkpoint is being written waits for it; a second one at any other moment stops
at once and says which step a resume (``train.resume=auto``) continues from.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    def __init__(self, saved_step: int | None) -> None:
        self.received: int | None = None  # the first signal's number
        self.saved_step = saved_step  # the step of the newest last.pt (None: none yet)
        self._saving = False

    @contextlib.contextmanager
    def handled(self) -> Iterator[None]:
        """Catch SIGINT and SIGTERM within the block."""
        previous = {s: signal.signal(s, self._request) for s in SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def saving(self, step: int) -> Iterator[None]:
        """A checkpoint of ``step`` is being written: a second signal waits for it."""
        self._saving = True
        try:
            yield
            self.saved_step = step
        finally:
            self._saving = False

    def _request(self, signal_number: int, frame: object) -> None:
        name = signal.Signals(signal_number).name
        if self.received is None:
            self.received = signal_number
            log.warning("%s received: finishing the current step, then saving", name)
        elif self._saving:
            log.warning("%s again: a checkpoint is being written; stopping as soon as it is complete", name)
        else:
            kept = (
                f"train.resume=auto continues from step {self.saved_step}"
                if self.saved_step is not None
                else "nothing was saved yet"
            )
            log.warning("%s again: stopping now, without saving; the updates since are lost: %s", name, kept)
            raise KeyboardInterrupt
