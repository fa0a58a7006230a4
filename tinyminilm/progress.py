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


def stderr_is_terminal() -> bool:
    """Whether sys.stderr is a terminal, where a progress bar may be drawn (False when it is closed or replaced)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def silent_bar_class() -> Any:
    """A tqdm class whose bars are never drawn: given to huggingface_hub when stderr is not a terminal, where its
    bars would only be lines of noise in a log. (tqdm comes with huggingface_hub.)"""
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent
