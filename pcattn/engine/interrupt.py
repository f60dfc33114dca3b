"""Ctrl-C and SIGTERM ask the loop to stop after the current step (a second Ctrl-C stops at
once); the loop then writes a resumable checkpoint."""

from __future__ import annotations

import signal
import threading


class TrainingInterrupted(Exception):
    """The run stopped on a signal after writing a resumable ``last.pt``."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class StopSignals:
    """Context manager: ``self.received`` becomes the signal number on SIGINT / SIGTERM."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received = 0
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, no checkpoint
        self.received = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
