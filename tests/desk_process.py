"""A real headless desk in a subprocess, for tests that need one."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class DeskProcess:
    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPDESK_")}
        full_env.update(
            {
                "OPDESK_DESK__DATA_DIR": str(data_dir),
                "OPDESK_CONTROL__PORT": "0",
                "OPDESK_REMOTE__PORT": "0",
                "PYTHONUNBUFFERED": "1",
                "PYTHONFAULTHANDLER": "1",
            }
        )
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opdesk", "--headless", "--record", "-", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.logs: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr_lines: list[str] = []
        self.history: list[dict[str, Any]] = []  # every event recorded so far, in publish order
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            self.history.append(event)
            self.events.put(event)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            try:
                self.logs.put(json.loads(line))
            except ValueError:
                self.logs.put({"msg": line.rstrip()})

    def wait_event(self, predicate, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; stderr:\n{''.join(self.stderr_lines[-30:])}")
            try:
                ev = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(ev):
                return ev

    def find_event(self, predicate, timeout: float = 20.0) -> dict[str, Any]:
        """The first event, recorded before or after this call, that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in list(self.history):
                if predicate(ev):
                    return ev
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching event; stderr:\n{''.join(self.stderr_lines[-30:])}")
            try:
                self.events.get(timeout=0.2)
            except queue.Empty:
                pass

    def wait_log(self, predicate, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching log line; stderr:\n{''.join(self.stderr_lines[-30:])}")
            try:
                rec = self.logs.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(rec):
                return rec

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Say where the desk is stuck before giving up on it: SIGABRT makes faulthandler
            # (PYTHONFAULTHANDLER) write every thread's stack to stderr, after its last log lines.
            self.proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.kill()
            self._stderr_pump.join(5)
            raise AssertionError(
                f"desk did not stop within {timeout}s of SIGTERM; its stderr:\n" + "".join(self.stderr_lines[-80:])
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
