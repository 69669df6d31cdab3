"""Fault injection for the kill-and-rerun test: a stage process SIGKILLs itself while it writes.

Put this folder on PYTHONPATH and set CROPHARMONY_KILL_AT_RENAME=N: the stage process (not DVC) dies by SIGKILL on
its N-th rename of a temporary `.tmp` output into place, after the bytes are written and before they land, the
moment a killed writer can least afford. Stages too quick for a timed kill are killed this way.
With CROPHARMONY_KILL_MARK=FILE it first writes the temporary's path to FILE, so the test sees that it fired."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

_AT = int(os.environ.get("CROPHARMONY_KILL_AT_RENAME", "0"))
_MARK = os.environ.get("CROPHARMONY_KILL_MARK", "")
_STAGE_PACKAGES = (f"{os.sep}curation{os.sep}", f"{os.sep}training{os.sep}")
_seen = 0


def _in_stage() -> bool:
    main = getattr(sys.modules.get("__main__"), "__file__", None) or (sys.argv[0] if sys.argv else "")
    return any(part in str(main) for part in _STAGE_PACKAGES)


def _wrap(original: Any) -> Any:  # noqa: ANN401 - wraps Path.replace and Path.rename alike
    def moved(self: Path, target: Any) -> Any:  # noqa: ANN401
        global _seen
        if self.name.endswith(".tmp") and _in_stage():
            _seen += 1
            if _seen == _AT:
                if _MARK:  # the test knows the kill was this hook's, whatever DVC prints about it
                    Path(_MARK).write_text(f"{self}\n", encoding="utf-8")
                os.kill(os.getpid(), signal.SIGKILL)
        return original(self, target)

    return moved


if _AT > 0:
    Path.replace = _wrap(Path.replace)  # type: ignore[method-assign]
    Path.rename = _wrap(Path.rename)  # type: ignore[method-assign]
