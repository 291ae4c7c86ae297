"""``within`` (lloom_lsp/backends/deadline.py) under every CPython 3.10+ found here.

The server supports 3.10, where ``within`` cannot use ``asyncio.timeout``, and
``asyncio.wait_for`` there drops a cancellation that comes in the turn the awaited thing
ends.  So each interpreter runs the module itself, loaded by file path, in a subprocess:
3.10 in a throwaway venv with the anyio that the VS Code extension bundles.  Under CI
(``CI=true``) a missing 3.10 fails the test; elsewhere it is skipped, with the reason.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = ROOT / "lloom_lsp" / "backends" / "deadline.py"
BUNDLED = ROOT / "editors" / "vscode" / "bundled" / "requirements.txt"
OLDEST = (3, 10)  # pyproject.toml's requires-python
UNDER_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")

#: Prints "cpython 3 10" (or another implementation's name).
ASK_VERSION = "import sys; print(sys.implementation.name, *sys.version_info[:2])"
#: Run by each interpreter: every case prints what became of it.
SCRIPT = r"""
import asyncio, importlib.util, json, sys

spec = importlib.util.spec_from_file_location("deadline", sys.argv[1])
deadline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(deadline)
within = deadline.within


def outcome(task):
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return f"returned {task.result()!r}"
    if isinstance(exc, TimeoutError):  # the builtin: asyncio's is another class before 3.11
        return "TimeoutError"
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


async def settle():
    for _ in range(3):  # the task is now waiting inside within()
        await asyncio.sleep(0)


async def slot_with_a_deadline(slots, held, seconds):
    # the shape of HttpTransport._send: a permit's acquire() awaited within the timeout
    async def acquire():
        await slots.acquire()
        held.append(True)

    await within(seconds, acquire())


async def timed_out():
    slots, held = asyncio.Semaphore(0), []
    task = asyncio.ensure_future(slot_with_a_deadline(slots, held, 0.05))
    await asyncio.wait([task])
    return outcome(task)


async def cancelled_as_a_slot_comes_free():
    slots, held = asyncio.Semaphore(0), []
    task = asyncio.ensure_future(slot_with_a_deadline(slots, held, 30))
    await settle()
    slots.release()
    task.cancel()  # in the same turn
    await asyncio.wait([task])
    return f"{outcome(task)}, slot {'taken' if held or slots.locked() else 'free'}"


async def cancelled_as_the_result_comes():
    answer = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(within(30, answer))
    await settle()
    answer.set_result("late")
    task.cancel()  # in the same turn
    await asyncio.wait([task])
    return outcome(task)


async def cancelled_while_waiting():
    task = asyncio.ensure_future(within(30, asyncio.Event().wait()))
    await settle()
    task.cancel()
    await asyncio.wait([task])
    return outcome(task)


async def answered_in_time():
    answer = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(within(30, answer))
    await settle()
    answer.set_result(42)
    await asyncio.wait([task])
    return outcome(task)


CASES = [
    timed_out,
    cancelled_as_a_slot_comes_free,
    cancelled_as_the_result_comes,
    cancelled_while_waiting,
    answered_in_time,
]
print(json.dumps({case.__name__: asyncio.run(case()) for case in CASES}))
"""

EXPECTED = {
    "timed_out": "TimeoutError",
    "cancelled_as_a_slot_comes_free": "cancelled, slot free",
    "cancelled_as_the_result_comes": "cancelled",
    "cancelled_while_waiting": "cancelled",
    "answered_in_time": "returned 42",
}


def _version(python: str) -> tuple[int, int] | None:
    """(major, minor) of a CPython, or None for anything else (or nothing that runs)."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", ASK_VERSION],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    name, _, numbers = done.stdout.strip().partition(" ")
    if done.returncode != 0 or name != "cpython":
        return None
    major, minor = map(int, numbers.split())
    return major, minor


def _interpreters() -> dict[tuple[int, int], str]:
    """One CPython per version from 3.10 on: this one, those on PATH, and pyenv's."""
    pyenv = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
    candidates = [sys.executable]
    candidates += filter(None, (shutil.which(f"python3.{minor}") for minor in range(10, 20)))
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3")))
    found: dict[tuple[int, int], str] = {}
    for python in candidates:
        version = _version(python)
        if version is not None and version >= OLDEST:
            found.setdefault(version, python)
    return dict(sorted(found.items()))


INTERPRETERS = _interpreters()


def _anyio_version() -> str:
    """The anyio the .vsix bundles for 3.10 (else the one installed here)."""
    try:
        pins = BUNDLED.read_text()
    except OSError:
        pins = ""
    pinned = re.search(r"^anyio==(\S+)", pins, re.MULTILINE)
    return pinned.group(1) if pinned else importlib.metadata.version("anyio")


@pytest.fixture(scope="module")
def python_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[tuple[int, int]], str]:
    """An interpreter of a version that can import ``deadline``: before 3.11, a venv made
    once per session with anyio installed from PyPI."""
    made: dict[tuple[int, int], str] = {}

    def python(version: tuple[int, int]) -> str:
        if version >= (3, 11):
            return INTERPRETERS[version]
        if version not in made:
            home = tmp_path_factory.mktemp(f"python{version[0]}.{version[1]}")
            subprocess.run(
                [INTERPRETERS[version], "-m", "venv", str(home)], check=True, timeout=120
            )
            bin_dir = "Scripts" if os.name == "nt" else "bin"
            made[version] = str(home / bin_dir / "python")
            install = ["install", "--quiet", "--disable-pip-version-check"]
            pip = subprocess.run(
                [made[version], "-m", "pip", *install, f"anyio=={_anyio_version()}"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if pip.returncode != 0:
                pytest.fail(f"pip could not install anyio for {version}:\n{pip.stderr[-3000:]}")
        return made[version]

    return python


def test_the_oldest_supported_python_is_here() -> None:
    if OLDEST not in INTERPRETERS:
        message = (
            f"no CPython {OLDEST[0]}.{OLDEST[1]} on PATH or in pyenv: within() is not tested "
            "on the oldest Python the server supports"
        )
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize(
    "version", list(INTERPRETERS), ids=[f"python{major}.{minor}" for major, minor in INTERPRETERS]
)
def test_within_times_out_and_never_drops_a_cancellation(
    version: tuple[int, int], python_for: Callable[[tuple[int, int]], str]
) -> None:
    # -I: nothing from this checkout or the environment is on the path; only the venv's anyio
    done = subprocess.run(
        [python_for(version), "-I", "-c", SCRIPT, str(DEADLINE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == EXPECTED
