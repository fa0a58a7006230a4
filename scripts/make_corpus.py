"""Build the benchmark corpus scripts/data/stdlib_docstrings.txt: real English prose of mixed length.

The texts are paragraphs of the docstrings of CPython's standard library (written by people, shipped with every
Python; © Python Software Foundation, PSF License Agreement — redistribution permitted). One text per line:
each paragraph's lines are joined with spaces. Paragraphs that look like code, tables or doctest are dropped.
Run: python scripts/make_corpus.py [N]   (default 4000 texts; the committed file came from CPython 3.11.7)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import sysconfig
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "stdlib_docstrings.txt"
SKIP = re.compile(r"^(test|idlelib|tkinter|turtle|lib2to3|ensurepip|_)|\.(test|tests)\b")


def docstrings():
    for info in sorted(pkgutil.walk_packages(onerror=lambda name: None), key=lambda i: i.name):
        if SKIP.search(info.name) or info.name.startswith(("this", "antigravity")) or "." in info.name:
            continue
        if getattr(info.module_finder, "path", "") != sysconfig.get_paths()["stdlib"]:
            continue  # the standard library only, not site-packages
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(info.name)
        except BaseException:
            continue
        yield inspect.getdoc(mod)
        for _, obj in sorted(vars(mod).items(), key=lambda kv: kv[0]):
            if getattr(obj, "__module__", None) == mod.__name__ and (inspect.isclass(obj) or inspect.isfunction(obj)):
                yield inspect.getdoc(obj)
                if inspect.isclass(obj):
                    for _, m in sorted(vars(obj).items(), key=lambda kv: kv[0]):
                        if inspect.isfunction(m):
                            yield inspect.getdoc(m)


def paragraphs(doc: str):
    for para in re.split(r"\n\s*\n", doc or ""):
        lines = [ln.strip() for ln in para.splitlines()]
        text = " ".join(ln for ln in lines if ln)
        if (len(text.split()) >= 3 and not text.startswith((">>>", "...", "|", "+-", "=", "-", "*", ":"))
                and sum(ch.isalpha() for ch in text) > 0.6 * len(text)):
            yield text


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    seen, out = set(), []
    for doc in docstrings():
        for p in paragraphs(doc):
            if p not in seen:
                seen.add(p)
                out.append(p)
    out = out[:n]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(out) + "\n", encoding="utf-8")
    words = [len(t.split()) for t in out]
    print(f"wrote {len(out)} texts to {OUT}: {min(words)}–{max(words)} words, median {sorted(words)[len(words) // 2]}")


if __name__ == "__main__":
    main()
