"""Writing a set of output files all or nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["Writer", "write_atomically", "write_outputs"]

#: Writes one file at the path it is given.
Writer = Callable[[Path], object]


def write_outputs(out: Path, files: Mapping[str, Writer]) -> list[Path]:
    """Write every file into a scratch folder first, then move them into ``out``.

    A failure while writing leaves ``out`` as it was: nothing half-written. Returns
    the paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".npl-") as scratch:
        for name, write in files.items():
            write(Path(scratch) / name)
        for name in files:
            shutil.move(str(Path(scratch) / name), str(out / name))
    return [out / name for name in files]


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

