"""What long commands show on a terminal: progress on stderr, a summary table at the end.

On a terminal the progress is a live bar (rich); in a log or a pipe it is a few plain
lines, so the output stays readable there. Progress always goes to stderr: stdout keeps
the command's result (its table, or its JSON with --json) clean.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# In plain mode, a line each time another tenth of a known total is done, or every this
# many seconds when the total is unknown.
PLAIN_EVERY_SECONDS = 5.0


def invocation() -> str:
    """The command that runs qbwc-bridge from where the user stands, to print in a hint.

    ``qbwc-bridge`` when that is on PATH (and is this one); else the path of this
    installation's script, relative to the current folder when it lies below it (a venv
    not activated: ``.venv/bin/qbwc-bridge``); else ``python -m qbwc_bridge``.
    """
    running = Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).name == "qbwc-bridge" else None
    script = running or Path(sys.executable).with_name("qbwc-bridge")
    found = shutil.which("qbwc-bridge")
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "qbwc-bridge"
    if script.exists():
        return _shown_path(script)
    return f"{_shown_path(Path(sys.executable))} -m qbwc_bridge"


def _shown_path(path: Path) -> str:
    absolute = path.absolute()
    try:
        shown = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        shown = str(absolute)
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def console(stream: TextIO | None = None) -> Console:
    """A rich console on ``stream`` (stdout by default), as it is when the call is made."""
    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)


class ProgressDisplay:
    """Progress of one piece of long work, shown on ``stream`` (stderr by default).

    ``update(completed, text)`` moves it on; ``total`` None means the end is not known (a
    spinner on a terminal). ``note(text)`` prints a line above the bar, or as a plain line.
    """

    def __init__(
        self, title: str, total: float | None = None, stream: TextIO | None = None
    ) -> None:
        self.title = title
        self.total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._next_share = 0.1
        self._last_line = time.monotonic()

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[text]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total, text="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def update(self, completed: float, text: str = "", description: str | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=completed, text=text, description=description
            )
            return
        if self.total:
            share = completed / self.total
            if share < self._next_share:
                return
            while self._next_share <= share:
                self._next_share += 0.1
            self._line(f"{description or self.title}: {text} ({min(share, 1.0):.0%})")
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS:
            self._line(f"{description or self.title}: {text}")

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(text, file=self.stream, flush=True)


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str | None = None,
    stream: TextIO | None = None,
    right: Sequence[str] = (),
) -> None:
    """A summary table on ``stream`` (stdout by default); ``right`` names the numeric columns."""
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left")
    for row in rows:
        table.add_row(*(str(value) for value in row))
    console(stream).print(table)
