"""A test hook, loaded with ``s2s --plugin plugin_kill ...``: the process kills itself with SIGKILL
as it starts writing the checkpoint ``S2S_TEST_KILL_AT`` names (``best.pt:20``: best.pt at step
20), after leaving a half-written temporary file, as a crash mid-write would."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from s2s.checkpoint import Checkpoint

_NAME, _STEP = os.environ["S2S_TEST_KILL_AT"].split(":")
_save = Checkpoint.save


def _save_or_die(self: Checkpoint, path: str | Path) -> None:
    path = Path(path)
    if path.name == _NAME and self.progress.step == int(_STEP):
        path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    _save(self, path)


Checkpoint.save = _save_or_die
