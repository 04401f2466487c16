"""Progress of a long run: named stages, their seconds, and the solver's notes.

>>> from npl_disposal.cli.progress import Progress
>>> reporter = Progress.to_stderr()  # doctest: +SKIP
>>> with reporter.stage("solve"):  # doctest: +SKIP
...     result = solve(problem, progress=reporter.note)

:class:`Progress` measures each stage and hands what happens to a renderer:
:class:`TTYRenderer` redraws one line per stage on a terminal (name, elapsed
seconds, a bar when the total is known, the latest note) and ends it with a
newline; :class:`PlainRenderer` writes one line when a stage starts and one when
it ends, for logs. Both write to standard error (never to standard output,
which carries a command's results). ``Progress()`` without a renderer only
records the seconds per stage (:meth:`Progress.seconds`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TextIO

__all__ = ["PlainRenderer", "Progress", "Renderer", "Stage", "TTYRenderer"]

Clock = Callable[[], float]


@dataclass
class Stage:
    """One named step of a run: its progress, latest note and seconds.

    ``total`` is the number of units of work when known (``done`` counts them);
    ``note`` is the latest line reported during the stage; ``result`` an optional
    one-line outcome the caller sets before the stage ends (shown on its last line).
    """

    name: str
    total: int | None = None
    done: int = 0
    note: str = ""
    result: str = ""
    failed: bool = False
    started: float = 0.0
    ended: float | None = None
    clock: Clock = field(default=time.perf_counter, repr=False)

    @property
    def seconds(self) -> float:
        """Seconds since the stage started (its duration once it has ended)."""
        end = self.ended if self.ended is not None else self.clock()
        return end - self.started


class Renderer(Protocol):
    """What a :class:`Progress` tells about its stages."""

    def begin(self, stage: Stage) -> None:
        """A stage started."""

    def update(self, stage: Stage) -> None:
        """Work was done in the stage (``done`` changed)."""

    def note(self, stage: Stage | None, line: str) -> None:
        """A note (a solver's line) arrived, during ``stage`` or outside any stage."""

    def end(self, stage: Stage) -> None:
        """The stage ended (``failed`` when it raised)."""


def _stderr(stream: TextIO | None) -> TextIO:
    """The stream to write to: ``stream`` or the current standard error, never stdout."""
    out = sys.stderr if stream is None else stream
    if out is sys.stdout or out is sys.__stdout__:
        raise ValueError(
            "progress goes to standard error (standard output carries the results); "
            "pass another stream or none"
        )
    return out


def _ending(stage: Stage) -> str:
    if stage.failed:
        return f"failed after {stage.seconds:.2f} s"
    text = f"done in {stage.seconds:.2f} s"
    if stage.total is not None:
        text += f" [{stage.done:,}/{stage.total:,}]"
    return text + (f" ({stage.result})" if stage.result else "")


class PlainRenderer:
    """One line per stage start and end (with its seconds); notes too when ``notes``.

    For logs and pipes: nothing is redrawn, every line ends with a newline.
    ``stream`` defaults to the standard error of the moment of writing.
    """

    def __init__(self, stream: TextIO | None = None, notes: bool = False) -> None:
        self._stream = _stderr(stream) if stream is not None else None
        self.notes = notes
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        with self._lock:
            out = _stderr(self._stream)
            out.write(line + "\n")
            out.flush()

    def begin(self, stage: Stage) -> None:
        """Write ``name ...``."""
        self._write(f"{stage.name} ...")

    def update(self, stage: Stage) -> None:
        """Nothing: the count is written when the stage ends."""

    def note(self, stage: Stage | None, line: str) -> None:
        """Write the note (prefixed with the stage's name) when ``notes`` is on."""
        if self.notes:
            prefix = f"{stage.name}: " if stage is not None else ""
            for part in line.splitlines() or [""]:
                self._write(prefix + part)

    def end(self, stage: Stage) -> None:
        """Write ``name done in S s`` (or ``failed after S s``)."""
        self._write(f"{stage.name} {_ending(stage)}")


class TTYRenderer:
    """One line per stage, redrawn in place with carriage returns, closed by a newline.

    The line shows the stage's name, its elapsed seconds, a bar when the total is
    known and the latest note, cut to the terminal's width. While a stage runs,
    a background thread redraws it every ``refresh`` seconds so the clock moves
    during a long solve (``refresh=None``: redraw only on updates and notes).
    """

    BAR = 20

    def __init__(
        self,
        stream: TextIO | None = None,
        width: int | None = None,
        refresh: float | None = 0.5,
    ) -> None:
        self._stream = _stderr(stream) if stream is not None else None
        self._width = width
        self.refresh = refresh
        self._lock = threading.RLock()
        self._shown = 0  # length of the line on screen; 0 when no line is open
        self._drawn = 0.0
        self._stop: threading.Event | None = None

    def _columns(self, out: TextIO) -> int:
        if self._width is not None:
            return self._width
        try:
            columns = os.get_terminal_size(out.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        return columns if columns > 0 else 80

    def _line(self, stage: Stage, final: bool) -> str:
        if final:
            return f"{stage.name} {_ending(stage)}"
        text = f"{stage.name} {stage.seconds:6.1f} s"
        if stage.total is not None:
            part = min(stage.done / stage.total, 1.0) if stage.total > 0 else 1.0
            filled = round(part * self.BAR)
            bar = "#" * filled + "-" * (self.BAR - filled)
            text += f" [{bar}] {stage.done:,}/{stage.total:,}"
        if stage.note:
            text += "  " + " ".join(stage.note.split())
        return text

    def _draw(self, stage: Stage, final: bool = False) -> None:
        with self._lock:
            out = _stderr(self._stream)
            text = self._line(stage, final)
            room = max(self._columns(out) - 1, 10)
            if len(text) > room:
                text = text[: room - 3] + "..."
            out.write("\r" + text + " " * max(self._shown - len(text), 0))
            self._shown = max(len(text), 1)
            if final:
                out.write("\n")
                self._shown = 0
            out.flush()
            self._drawn = time.monotonic()

    def _close_line(self) -> None:
        with self._lock:
            if self._shown:
                out = _stderr(self._stream)
                out.write("\n")
                out.flush()
                self._shown = 0

    def _tick(self, stage: Stage, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            with self._lock:
                if not stop.is_set():
                    self._draw(stage)

    def begin(self, stage: Stage) -> None:
        """Open the stage's line (closing any line still open) and start the clock."""
        with self._lock:
            self._stop_ticker()
            self._close_line()
            self._draw(stage)
            if self.refresh is not None and self.refresh > 0:
                self._stop = threading.Event()
                ticker = threading.Thread(
                    target=self._tick, args=(stage, self._stop, self.refresh), daemon=True
                )
                ticker.start()

    def update(self, stage: Stage) -> None:
        """Redraw the bar (at most 20 times a second, always when complete)."""
        complete = stage.total is not None and stage.done >= stage.total
        if complete or time.monotonic() - self._drawn >= 0.05:
            self._draw(stage)

    def note(self, stage: Stage | None, line: str) -> None:
        """Show the note on the stage's line; outside a stage, on a line of its own."""
        if stage is not None:
            self._draw(stage)
            return
        with self._lock:
            self._close_line()
            out = _stderr(self._stream)
            out.write(line.rstrip("\n") + "\n")
            out.flush()

    def end(self, stage: Stage) -> None:
        """Draw the stage's last line (its seconds) and end it with a newline."""
        with self._lock:
            self._stop_ticker()
            self._draw(stage, final=True)

    def _stop_ticker(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None


class Progress:
    """Stages of a run with their seconds, shown by a renderer (or only recorded).

    ``note`` has the signature of :func:`~npl_disposal.solvers.solve`'s ``progress``
    callback, so ``solve(problem, progress=reporter.note)`` shows the solver's
    lines inside the current stage. Stages may nest; notes and ``advance`` go to
    the innermost one. ``stages`` lists every stage started, in order.
    """

    def __init__(self, renderer: Renderer | None = None, clock: Clock = time.perf_counter) -> None:
        self.renderer = renderer
        self._clock = clock
        self._open: list[Stage] = []
        self.stages: list[Stage] = []
        self._lock = threading.RLock()

    @classmethod
    def to_stderr(cls, notes: bool = False, stream: TextIO | None = None) -> Progress:
        """Progress on standard error (or ``stream``): redrawn on a terminal, else plain lines.

        ``notes`` also writes every note as its own line (plain renderer only;
        the terminal line always shows the latest note).
        """
        out = _stderr(stream)
        isatty = getattr(out, "isatty", None)
        if callable(isatty) and isatty():
            return cls(TTYRenderer(stream))
        return cls(PlainRenderer(stream, notes=notes))

    @property
    def current(self) -> Stage | None:
        """The innermost stage running, if any."""
        return self._open[-1] if self._open else None

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Stage]:
        """Run a stage: measured from entry to exit; a failure is shown, then re-raised."""
        item = Stage(name, total=total, started=self._clock(), clock=self._clock)
        with self._lock:
            self._open.append(item)
            self.stages.append(item)
        if self.renderer is not None:
            self.renderer.begin(item)
        try:
            yield item
        except BaseException:
            item.failed = True
            raise
        finally:
            item.ended = self._clock()
            with self._lock:
                self._open.remove(item)
            if self.renderer is not None:
                self.renderer.end(item)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units of work done in the current stage."""
        item = self.current
        if item is None:
            return
        item.done += n
        if self.renderer is not None:
            self.renderer.update(item)

    def note(self, line: str) -> None:
        """Report one line (e.g. a solver's step) in the current stage."""
        item = self.current
        if item is not None:
            item.note = line
        if self.renderer is not None:
            self.renderer.note(item, line)

    def seconds(self) -> dict[str, float]:
        """Seconds per stage name (summed when a name repeats), in order of first start."""
        out: dict[str, float] = {}
        for item in self.stages:
            out[item.name] = out.get(item.name, 0.0) + item.seconds
        return out
