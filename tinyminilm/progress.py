"""Progress bars, with tqdm imported only when one is asked for (tqdm is optional: `tinyminilm[progress]`)."""

from __future__ import annotations

import sys
from typing import Any, TextIO


def tqdm_class(option: str = "show_progress_bar=True") -> Any:
    """tqdm's bar class, or an ImportError saying that `option` needs tqdm and how to install it."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(f"{option} needs tqdm: pip install tqdm (or pip install 'tinyminilm[progress]')") from None
    return tqdm


def progress_bar(total: int | None, desc: str, unit: str = "text", file: TextIO | None = None,
                 option: str = "show_progress_bar=True") -> Any:
    """A tqdm bar on `file` (default stderr) counting `unit`s; total None for a stream of unknown length."""
    return tqdm_class(option)(total=total, desc=desc, unit=unit, file=file or sys.stderr, dynamic_ncols=True)
