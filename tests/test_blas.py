"""tinyminilm.blas: NumPy's own OpenBLAS found, read, set and described — never another OpenBLAS beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import threadpoolctl

from tinyminilm import batching, blas


def numpys_openblas() -> dict:
    """threadpoolctl's entry for the one OpenBLAS in this test process (NumPy's wheels bundle it)."""
    np.zeros(1)  # numpy is imported, so its OpenBLAS is loaded
    openblas = [lib for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"]
    assert len(openblas) == 1, "NumPy's wheels bundle one OpenBLAS; these tests expect it and nothing else"
    return openblas[0]


def test_small_products_unpacked_follows_the_kernel_and_thread_count():
    """blas reads OpenBLAS's kernel name as threadpoolctl reports it; the small-matrix path counts only on one
    BLAS thread."""
    openblas = numpys_openblas()
    assert blas.kernel() == openblas["architecture"]
    with blas.one_thread:
        assert blas.small_products_unpacked() == (blas.kernel() in blas.SMALL_MATRIX_KERNELS)
    if batching.default_threads() > 1 and blas.get_threads() > 1:
        assert not blas.small_products_unpacked()


def test_threads_sets_and_restores_the_count():
    before = blas.get_threads()
    try:
        blas.set_threads(2)
        with blas.threads(1):
            assert blas.get_threads() == 1 == numpys_openblas()["num_threads"]
        assert blas.get_threads() == 2
    finally:
        blas.set_threads(before)


def test_describe_is_numpys_openblas():
    openblas = numpys_openblas()
    described = blas.describe()
    assert described == {"library": "OpenBLAS", "version": openblas["version"], "kernel": openblas["architecture"],
                         "threading": openblas["threading_layer"], "threads": openblas["num_threads"],
                         "path": os.path.realpath(openblas["filepath"])}


ANOTHER_OPENBLAS = """
import ctypes, json, os, shutil, tempfile
from pathlib import Path
import numpy as np
import threadpoolctl

real_info = threadpoolctl.threadpool_info
[numpys] = [lib["filepath"] for lib in real_info() if lib["internal_api"] == "openblas"]
other = Path(tempfile.mkdtemp()) / (Path(numpys).name.split(".so")[0] + "-other.so")
shutil.copy(numpys, other)  # a second OpenBLAS in the process, as SciPy's is beside torch or scikit-learn
ctypes.CDLL(str(other))
threadpoolctl.threadpool_info = lambda: sorted(real_info(), key=lambda lib: lib["filepath"] != str(other))
controller = threadpoolctl.ThreadpoolController()

def limit(numpy_threads, other_threads):  # set apart, even on a 1-CPU runner, so a mix-up shows
    controller.select(filepath=numpys).limit(limits=numpy_threads)
    controller.select(filepath=str(other)).limit(limits=other_threads)

def counts():
    return {("numpy" if lib["filepath"] == numpys else "other"): lib["num_threads"]
            for lib in real_info() if lib["internal_api"] == "openblas"}

from tinyminilm import blas
"""


def beside_another_openblas(tmp_path, body: str) -> dict:
    """Run `body` in a process where a second OpenBLAS is loaded and threadpoolctl lists it first — its order
    varies from run to run; return the JSON object `body` prints last."""
    script = tmp_path / "another_openblas.py"
    script.write_text(ANOTHER_OPENBLAS + textwrap.dedent(body), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_the_blas_limit_reaches_numpys_openblas_beside_another_one(tmp_path):
    """With a second OpenBLAS loaded (SciPy's, say) and listed first by threadpoolctl, encode's one-thread limit
    must reach the library NumPy calls, not the other one: limiting the wrong one left NumPy on 2 threads in each
    of 2 batches, half the throughput."""
    seen = beside_another_openblas(tmp_path, """
        limit(2, 2)
        before = counts()
        with blas.one_thread:
            inside = counts()
        print(json.dumps({"before": before, "inside": inside, "after": counts()}))
    """)
    assert seen["before"] == {"numpy": 2, "other": 2}
    assert seen["inside"] == {"numpy": 1, "other": 2}, seen
    assert seen["after"] == {"numpy": 2, "other": 2}


def test_describe_names_numpys_openblas_when_another_is_listed_first(tmp_path):
    """`tinyminilm info` used threadpoolctl's first BLAS library (libs[0]); with a second OpenBLAS loaded and
    listed first, that described the other library. describe() names the one NumPy calls: its file and its thread
    count (2 here, the other's 3)."""
    seen = beside_another_openblas(tmp_path, """
        limit(2, 3)
        described = blas.describe()
        blas.limit(1)
        print(json.dumps({"numpys": os.path.realpath(numpys), "other": os.path.realpath(other),
                          "listed_first": os.path.realpath(threadpoolctl.threadpool_info()[0]["filepath"]),
                          "described": described, "after_limit": counts()}))
    """)
    assert seen["listed_first"] == seen["other"] != seen["numpys"]  # what libs[0] would have described
    assert seen["described"]["path"] == seen["numpys"]
    assert seen["described"]["threads"] == 2 and seen["described"]["library"] == "OpenBLAS"
    assert seen["after_limit"] == {"numpy": 1, "other": 1}  # a Ray actor's limit reaches every BLAS library


class FakeLibrary:
    """A threadpoolctl library controller, as blas sees one when NumPy's BLAS is not an OpenBLAS it can find."""

    def __init__(self, name: str, threads: int) -> None:
        self.num_threads = threads
        self._info = {"internal_api": name, "version": "2025.1", "architecture": None, "threading_layer": "intel",
                      "num_threads": threads, "filepath": f"/opt/lib{name}.so"}

    def info(self) -> dict:
        return self._info


def test_describe_another_blas_only_when_it_is_the_only_one(monkeypatch):
    monkeypatch.setattr(blas, "_numpys_openblas", lambda: None)
    monkeypatch.setattr(blas, "_other_blas", lambda: [FakeLibrary("mkl", 4)])
    assert blas.describe() == {"library": "MKL", "version": "2025.1", "kernel": None, "threading": "intel",
                               "threads": 4, "path": "/opt/libmkl.so"}
    monkeypatch.setattr(blas, "_other_blas", lambda: [FakeLibrary("mkl", 4), FakeLibrary("blis", 1)])
    assert set(blas.describe().values()) == {None}  # which one NumPy calls is unknown: nothing is claimed
