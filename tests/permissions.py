"""Who may read what: a temporary umask, and running code as another user, as a service account does after root
built the image. Only root can switch users, so the tests that need it say why they skip elsewhere (CI runs as
root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask set to `mask` for the block."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def require_root() -> pwd.struct_passwd:
    """The `nobody` account. Where this process cannot become it, the test is skipped saying why — except in CI
    (CI=true), which runs as root on a system with `nobody`: there the same situation fails, so that a skip can
    never pass for these tests."""
    problem = None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        problem = ("switching to another user needs root; this test runs as uid "
                   f"{os.geteuid() if hasattr(os, 'geteuid') else '?'} (CI runs it as root)")
    elif _nobody() is None:
        problem = "this system has no `nobody` account to switch to"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"in CI this test must run: {problem}")
        pytest.skip(problem)
    return _nobody()


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A fresh folder every user may enter (0755, like /opt/models in an image); pytest's tmp_path is 0700."""
    folder = Path(tempfile.mkdtemp(prefix="tinyminilm-shared-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


PRELOAD = "import tinyminilm.cli; tinyminilm.cli.build_parser()"
# What tinyminilm imports or looks up only when it first loads a model or encodes, done while still root: the
# installed packages may live where `nobody` cannot read (a pyenv under /root, a CI checkout in a 0700 folder).
_LAZY_IMPORTS = ("import mmap, threadpoolctl, safetensors.numpy, tokenizers, tinyminilm.util, tinyminilm.fast, "
                 "tinyminilm.tokenization, tinyminilm.batching; tinyminilm.blas.get_threads()")


def run_as(user: pwd.struct_passwd, code: str, *args: str, preload: str = PRELOAD,
           **kwargs) -> subprocess.CompletedProcess:
    """Run Python `code` (with `args` in sys.argv[1:]) as `user`, without supplementary groups.

    The child starts as root, runs `preload` (importing the package and its dependencies, which may live where
    only root can read, e.g. a pyenv under /root), then drops to `user` before `code` runs: everything `code`
    opens, it opens as `user`.
    """
    drop = (f"import os, sys\n{preload}\n{_LAZY_IMPORTS}\n"
            f"os.setgroups([]); os.setgid({user.pw_gid}); os.setuid({user.pw_uid})\n")
    env = {**os.environ, "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", drop + code, *args], cwd="/", env=env, capture_output=True,
                          text=True, timeout=300, **kwargs)
