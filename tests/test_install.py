"""The install line works as written: build the sdist and the wheel, check their metadata, install the wheel into
a clean venv and embed a sentence with it.

Marked `install` (deselect with `-m "not install"`); it runs in CI like every other test. It needs the package
index for build's isolated setuptools and for the wheel's dependencies (pip's cache makes repeats quick). The model
is not fetched again: TINYMINILM_HOME points at a copy of the folder the session already has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinyminilm
from tinyminilm import hub

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = (".git", ".venv", "weights", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
              ".hypothesis", "*.pyc")

pytestmark = pytest.mark.install


def sh(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kwargs)
    assert run.returncode == 0, f"{' '.join(map(str, cmd))}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def test_build_check_install_the_wheel_in_a_clean_venv_and_embed(tmp_path, model_dir, model):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp_path / "dist"
    sh(sys.executable, "-m", "build", "--outdir", dist, src)  # the sdist, then the wheel built from the sdist
    version = tinyminilm.__version__
    wheel, sdist = dist / f"tinyminilm-{version}-py3-none-any.whl", dist / f"tinyminilm-{version}.tar.gz"
    assert sorted(dist.iterdir()) == sorted([wheel, sdist])
    check = sh(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    assert check.stdout.count("PASSED") == 2, check.stdout
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"tinyminilm-{version}.dist-info/METADATA").decode()
        assert f"tinyminilm-{version}.dist-info/licenses/LICENSE" in z.namelist()
    for line in ("License-Expression: MIT", "License-File: LICENSE", "Description-Content-Type: text/markdown",
                 "Author: ", "Keywords: ", "Classifier: Typing :: Typed", "Requires-Python: >=3.10",
                 *(f"Provides-Extra: {extra}" for extra in ("progress", "ray", "release", "test"))):
        assert f"\n{line}" in meta, line
    with tarfile.open(sdist) as t:  # a complete source release: the tests can run from it
        names = set(t.getnames())
    assert {f"tinyminilm-{version}/{p}" for p in ("LICENSE", "tests/conftest.py", "tests/golden/minilm.npz")} <= names

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", wheel)

    home = tmp_path / "home"
    hub.copy_model(model_dir, home / "all-MiniLM-L6-v2")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TINYMINILM_HOME"] = str(home)
    code = ("import json, tinyminilm; m = tinyminilm.load(); "
            "print(json.dumps({'file': tinyminilm.__file__, 'folder': str(m.folder), "
            "'vector': m.encode('The quick brown fox jumps over the lazy dog.').tolist()}))")
    run = sh(venv / "bin" / "python", "-c", code, cwd=tmp_path, env=env)  # cwd: not the checkout
    got = json.loads(run.stdout)
    assert Path(got["file"]).is_relative_to(venv), got["file"]  # the installed copy, not the source tree
    assert got["folder"] == str(home / "all-MiniLM-L6-v2") and "downloading" not in run.stderr
    expected = model.encode("The quick brown fox jumps over the lazy dog.")
    assert np.abs(np.array(got["vector"], dtype=np.float32) - expected).max() <= 1e-6

    cli = sh(venv / "bin" / "tinyminilm", "similarity", "A cat sits on the mat", "A kitten rests on a rug",
             cwd=tmp_path, env=env)  # the console script the wheel installs
    assert abs(float(cli.stdout) - 0.660121) <= 1e-5
