"""Packaging promises: a light import, a working command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


def test_import_is_light():
    code = ("import sys, tinyminilm; heavy = ['torch', 'onnxruntime', 'scipy', 'transformers', 'huggingface_hub', "
            "'tqdm', 'ray']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_embed_prints_one_json_array_per_text(model_dir, model):
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "embed", "--model", str(model_dir),
                          "hello world", "a second text"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 2 and len(rows[0]) == 384
    np.testing.assert_allclose(np.array(rows), model.encode(["hello world", "a second text"]), atol=1e-7)


def test_cli_error_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "embed", "--model", str(tmp_path / "none"), "x"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith("tinyminilm: error:") and "Traceback" not in run.stderr
