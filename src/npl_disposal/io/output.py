"""Writing outputs all or nothing: an output folder replaced as one, a file replaced whole.

An output folder (``plan``'s ``--out``) holds one run's files. :func:`replace_folder`
writes them into a hidden sibling folder and then swaps it with the old one in one
step (Linux: ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames), so a reader sees
the old set or the new set, never a mix, and of two runs into one folder at once the
folder ends with one run's complete output. Anything that stops the run before the
swap (an error, Ctrl-C, ``kill``) leaves the folder exactly as it was and removes the
hidden folder; one left by a run killed outright (SIGKILL) is removed by the next run
into the same folder once its process is gone (the hidden folder's name carries the
host and process id). Because the folder is replaced as a whole, :func:`check_folder` refuses a
folder holding files this library did not write, or another kind of output
(:data:`OUTPUT_KINDS`: a plan, a report, loan tapes, a risk frontier): a run replaces
only a folder of its own kind. :func:`write_file` does the same for
one file (``value``'s ``--out options.csv``).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from npl_disposal.exceptions import OutputError

__all__ = [
    "OUTPUT_KINDS",
    "OUTPUT_NAMES",
    "Writer",
    "check_file",
    "check_folder",
    "check_name",
    "output_kind",
    "replace_folder",
    "write_atomically",
    "write_file",
]

#: Writes one file at the path it is given.
Writer = Callable[[Path], object]

#: The kinds of output folder and the files each holds: a folder is replaced only by an
#: output of its own kind (a plan by a plan, a report by a report...).
OUTPUT_KINDS: Mapping[str, frozenset[str]] = {
    "plan": frozenset({"plan.csv", "schedule.csv", "branches.csv", "summary.json",
                       "partitions.csv"}),
    "report": frozenset({"report.html", "report.xlsx", "tapes"}),
    "tapes": frozenset({"packages.csv", "fields.csv"}),
    "frontier": frozenset({"frontier.csv", "frontier.png"}),
}  # fmt: skip
#: What each kind is called in a message.
_KIND_WORDS = {"plan": "a plan", "report": "a report", "tapes": "loan tapes",
               "frontier": "a risk frontier"}  # fmt: skip
#: Files the library writes into an output folder (any command); a folder holding others
#: is not replaced.
OUTPUT_NAMES = frozenset().union(*OUTPUT_KINDS.values())
#: A package's loan tape (``bulk_transfer-p1.csv``, ``.xlsx``) in a tapes folder; it is the
#: library's own only when the folder's ``packages.csv`` lists the package.
_TAPE_FILE = re.compile(r"(?P<package>[\w.-]+-p\d+)\.(csv|xlsx)")
#: Files a desktop leaves in folders, replaced with the folder.
_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
#: This host in a hidden folder's name, so a run never judges another host's process.
_HOST = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]
#: ``renameat2``'s arguments (Linux).
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def check_folder(
    path: str | os.PathLike[str], what: str = "output folder", kind: str | None = None
) -> Path:
    """``path`` as an output folder, checked before any work is done.

    It may not exist yet (it is created); if it exists it must be a folder holding
    only files this library writes, of output ``kind`` (a key of :data:`OUTPUT_KINDS`)
    when given, and the folder it sits in must be writable. Raises
    :class:`~npl_disposal.exceptions.OutputError` saying what to change.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} {out}: is a file; give a folder (it is created if missing)")
    if out.is_dir():
        kinds, strangers = _contents(out)
        if strangers:
            raise OutputError(
                f"{what} {out}: holds files npl-disposal did not write ({_shown(strangers)}); "
                "the folder is replaced as a whole, so give an empty or a new folder"
            )
        others = sorted({k for k in kinds.values() if k != kind}) if kind else []
        if others:
            held = sorted(n for n, k in kinds.items() if k in others)
            raise OutputError(
                f"{what} {out}: holds {' and '.join(_KIND_WORDS[k] for k in others)} "
                f"({_shown(held)}), not {_KIND_WORDS[kind or '']}; the folder is replaced as a "
                "whole, so choose another folder"
            )
    _check_writable(out.parent, out, what)
    return out


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _contents(folder: Path, prefix: str = "") -> tuple[dict[str, str], list[str]]:
    """The library's files in ``folder`` by name with their kind, and the other files."""
    names = sorted(n for n in os.listdir(folder) if n not in _LITTER)
    listed = _listed_packages(folder / "packages.csv") if "packages.csv" in names else set()
    kinds: dict[str, str] = {}
    strangers: list[str] = []
    for name in names:
        tape = _TAPE_FILE.fullmatch(name)
        kind = ("tapes" if tape["package"] in listed else None) if tape else _kind_of(name)
        if kind is None or (name == "tapes" and not (folder / name).is_dir()):
            strangers.append(prefix + name)
            continue
        if name == "tapes":  # a report's tapes folder: tapes only
            inner, others = _contents(folder / name, f"{prefix}{name}/")
            strangers += others + [n for n, k in inner.items() if k != "tapes"]
        kinds[prefix + name] = kind
    return kinds, strangers


def _kind_of(name: str) -> str | None:
    """The kind of output whose files include ``name`` (a tape by its pattern)."""
    for kind, names in OUTPUT_KINDS.items():
        if name in names:
            return kind
    return "tapes" if _TAPE_FILE.fullmatch(name) else None


def _listed_packages(path: Path) -> set[str]:
    """The packages ``packages.csv`` lists (its ``package`` column); empty if unreadable.

    The file is in one of the encodings the library writes CSV in (``--encoding``).
    """
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with path.open(encoding=encoding, newline="") as handle:
                return {row.get("package") or "" for row in csv.DictReader(handle)}
        except UnicodeDecodeError:
            continue
        except (OSError, csv.Error):
            break
    return set()


def check_name(name: str, what: str = "output folder", hint: str = "") -> str:
    """``name`` if it names a file right inside a folder; else OutputError saying so.

    A name with a path separator or a NUL, or ``.`` or ``..``, would write outside the
    folder (or nowhere). ``hint`` ends the message (what to change).
    """
    seps = {"/", "\\", os.sep, *([os.altsep] if os.altsep else [])}
    if name in ("", ".", "..") or "\0" in name or any(sep in name for sep in seps):
        raise OutputError(
            f"{what}: {name!r} is not a file name inside the folder (a name may not hold "
            f"'/' or '\\' nor be '.' or '..'){'; ' + hint if hint else ''}"
        )
    return name


def output_kind(names: Iterable[str]) -> str | None:
    """The kind of output (a key of :data:`OUTPUT_KINDS`) ``names`` make; None if not one."""
    kinds = {_kind_of(n) for n in names}
    return next(iter(kinds)) if len(kinds) == 1 else None


def check_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """``path`` as an output file, checked before any work is done (not a folder, writable)."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{what} {target}: is a folder; give the path of a file")
    _check_writable(target.parent, target, what)
    return target


def _check_writable(folder: Path, target: Path, what: str) -> None:
    """The nearest existing folder on the way to ``folder`` must be writable."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: cannot write in {existing} (no permission)")


def replace_folder(out: str | os.PathLike[str], files: Mapping[str, Writer]) -> list[Path]:
    """Write ``files`` (name: writer) as the new content of folder ``out``, all or nothing.

    Returns the paths written. ``out`` may hold only an output of the same kind as
    ``files`` (:func:`output_kind`). See the module docstring for what a reader, a
    second run and an interruption see.
    """
    target = check_folder(out, kind=output_kind(files))
    for name in files:
        check_name(name, f"output folder {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=_scratch_prefix(target)))
    try:
        for name, write in files.items():
            write(scratch / name)
        os.chmod(scratch, 0o777 & ~_umask())
        with _signals_held():
            _swap(scratch, target)
            shutil.rmtree(scratch, ignore_errors=True)  # now the old folder, if there was one
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return [target / name for name in files]


def _scratch_prefix(out: Path, pid: int | None = None) -> str:
    """The name's start of a run's hidden folder beside ``out``: its host and process id."""
    return f".{out.name}.npl-{_HOST}-{os.getpid() if pid is None else pid}-"


def _remove_stale(out: Path) -> None:
    """Remove the hidden folders beside ``out`` left by runs of this host that were killed.

    A folder is removed only when its name carries this host and the id of a process that
    no longer runs (a run killed by SIGKILL or a power cut); a live run's is kept, as is
    any folder whose owner cannot be told (another host, another naming, not POSIX).
    """
    if os.name != "posix":
        return
    start = f".{out.name}.npl-{_HOST}-"
    for path in out.parent.glob(f"{glob.escape(start)}*"):
        pid = path.name[len(start):].partition("-")[0]
        if pid.isdigit() and path.is_dir() and not path.is_symlink() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # no permission to signal it: it exists
        return True
    return True


def write_file(target: str | os.PathLike[str], write: Writer) -> Path:
    """Write one file through ``write`` into a hidden sibling, then rename it into place."""
    path = check_file(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place."""
    write_file(target, lambda p: p.write_bytes(data))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``; the old ``out`` (if any) ends at ``new``."""
    if not out.exists():
        try:
            os.rename(new, out)
            return
        except OSError as exc:  # another run made it meanwhile: swap with that
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
    if _exchange(new, out):
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)
        raise
    os.rename(old, new)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # an old C library
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    renameat2.restype = ctypes.c_int
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the folders are swapped (a few milliseconds)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)
