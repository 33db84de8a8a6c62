"""Session files: every exchange of a run as JSON lines, for replay and for support."""

from __future__ import annotations

import json
import time
from pathlib import Path


class Recorder:
    """Appends one JSON object per event to ``<dir>/run-<id>.jsonl``."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _write(self, run_id: int, event: dict[str, object]) -> None:
        path = self.directory / f"run-{run_id}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**event, "at": time.time()}, ensure_ascii=False) + "\n")

    def sent(self, run_id: int, seq: int, request_xml: str) -> None:
        self._write(run_id, {"seq": seq, "event": "request", "qbxml": request_xml})

    def received(
        self, run_id: int, seq: int, response_xml: str, hresult: str, message: str
    ) -> None:
        self._write(
            run_id,
            {
                "seq": seq,
                "event": "response",
                "qbxml": response_xml,
                "hresult": hresult,
                "message": message,
            },
        )
