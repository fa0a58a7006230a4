"""Fetch and verify the model files, the same way tinyminilm.load() does on first use.

    python scripts/fetch_weights.py [DIR]     # default: weights/all-MiniLM-L6-v2 of this checkout
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyminilm.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["download", *(["--dir", sys.argv[1]] if len(sys.argv) > 1 else [])]))
