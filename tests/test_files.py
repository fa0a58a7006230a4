"""Files tinyminilm writes: whole or not at all, with the mode an ordinary open() gives under the umask, and
without ever touching the process umask (which other threads creating files at the same moment would see)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import pytest

import tiny_bert
from permissions import umask
from tinyminilm import hub
from tinyminilm.cli import main
from tinyminilm.files import atomic_path


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_bert.make_folder(tmp_path_factory.mktemp("tiny") / "t", "pooling_mode_mean_tokens", True)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o027, 0o640)])
def test_a_new_file_gets_what_open_would_give_under_the_umask(tmp_path, mask, expected):
    with umask(mask):
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
        with open(tmp_path / "plain.txt", "w") as f:  # the reference: an ordinary open()
            f.write("x")
    assert mode(tmp_path / "out.txt") == mode(tmp_path / "plain.txt") == expected


def test_a_replaced_file_keeps_its_mode(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    (tmp_path / "out.txt").chmod(0o640)
    with umask(0o022), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "out.txt").read_text() == "new" and mode(tmp_path / "out.txt") == 0o640


def test_a_download_written_through_the_hash_check_gets_the_umask_mode(tmp_path):
    data = b"[PAD]\n[UNK]\n"
    with umask(0o022):
        hub.install_verified(io.BytesIO(data), tmp_path / "sub" / "vocab.txt", hashlib.sha256(data).hexdigest())
    assert (tmp_path / "sub" / "vocab.txt").read_bytes() == data
    assert mode(tmp_path / "sub" / "vocab.txt") == 0o644 and mode(tmp_path / "sub") == 0o755


def test_cli_outputs_search_cache_and_svg_are_0644_under_umask_022(capsys, tmp_path, tiny):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("the cat sat on the mat\na quick brown fox\nhello world\n")
    with umask(0o022):
        assert main(["embed", "--model", str(tiny), "-i", str(corpus), "-o", str(tmp_path / "out.npy")]) == 0
        assert main(["embed", "--model", str(tiny), "-i", str(corpus), "-o", str(tmp_path / "out.jsonl")]) == 0
        assert main(["search", "--model", str(tiny), "--corpus", str(corpus), "a cat"]) == 0
        assert main(["explain", "--model", str(tiny), "a cat", "--svg", str(tmp_path / "att.svg")]) == 0
    capsys.readouterr()
    written = ["out.npy", "out.jsonl", "notes.txt.tinyminilm.npy", "notes.txt.tinyminilm.npy.json", "att.svg"]
    assert {name: oct(mode(tmp_path / name)) for name in written} == {name: "0o644" for name in written}


def test_writing_files_never_changes_the_process_umask(capsys, tmp_path, tiny):
    """os.umask is the only way to read the umask portably, and it sets it: another thread creating a file at
    that moment gets the wrong mode. Every writer must leave it alone; a profiler sees every call."""
    calls = []

    def watch(frame, event, arg):
        if event == "c_call" and arg is os.umask:
            calls.append(frame.f_code.co_qualname if hasattr(frame.f_code, "co_qualname") else frame.f_code.co_name)

    corpus = tmp_path / "notes.txt"
    corpus.write_text("the cat sat on the mat\na quick brown fox\n")
    sys.setprofile(watch)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
        main(["embed", "--model", str(tiny), "-i", str(corpus), "-o", str(tmp_path / "out.npy")])
        main(["search", "--model", str(tiny), "--corpus", str(corpus), "a cat"])
        main(["explain", "--model", str(tiny), "a cat", "--svg", str(tmp_path / "att.svg")])
        hub.install_verified(io.BytesIO(b"x"), tmp_path / "dl" / "x", hashlib.sha256(b"x").hexdigest())
    finally:
        sys.setprofile(None)
    capsys.readouterr()
    assert calls == []
