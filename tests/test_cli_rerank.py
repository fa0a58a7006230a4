"""`tinyminilm rerank` end to end on a random cross-encoder of ms-marco-MiniLM-L6-v2's shape (tests/cross_models.py):
texts as arguments and in every input format, the table and JSON lines, and bad input named by file and line.

The scores are CrossEncoder.rank's, which tests/test_cross_encoder.py checks against sentence-transformers.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cross_models as cm
from test_cli import BAD_INPUTS
from tinyminilm import CrossEncoder
from tinyminilm.cli import build_parser, main

QUERY = cm.BERLIN
DOCS = [cm.MUSEUMS, cm.POPULATION, "Berlin, Germany's capital, dates to the 13th century.", "the lazy dog",
        "東京タワー", cm.MUSEUMS]  # a duplicate: the earlier one first


@pytest.fixture(scope="module")
def folder(reranker_folder):
    return reranker_folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_texts_as_arguments_print_rank_s_table(capsys, folder, reranker):
    expected = reranker.rank(QUERY, DOCS)
    code, out, err = run(capsys, "rerank", QUERY, *DOCS, "--model", folder)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(DOCS)
    for n, (line, hit) in enumerate(zip(lines, expected), 1):
        i = hit["corpus_id"]
        assert line == f"{n:4d}  {hit['score']:9.4f}  {f'doc {i}':<11} {DOCS[i]}"


def test_json_lines_top_k_batch_size_and_activation(capsys, folder, reranker):
    expected = reranker.rank(QUERY, DOCS, top_k=3, activation_fn="sigmoid")
    code, out, err = run(capsys, "rerank", QUERY, *DOCS, "--model", folder, "--json", "-k", "3", "--batch-size", "2",
                         "--activation", "sigmoid")
    assert code == 0, err
    got = rows(out)
    assert [r["rank"] for r in got] == [1, 2, 3] and [r["index"] for r in got] == [e["corpus_id"] for e in expected]
    assert [r["line"] for r in got] == [None] * 3 and [r["text"] for r in got] == [DOCS[r["index"]] for r in got]
    np.testing.assert_allclose([r["score"] for r in got], [e["score"] for e in expected], atol=1e-5, rtol=0)
    assert all(0 < r["score"] < 1 for r in got)  # the sigmoid, not the model's own identity


def test_max_length_cuts_pairs_as_the_constructor_s_does(capsys, folder):
    docs = [cm.LONG_D, cm.POPULATION, cm.LONG_Q]
    expected = CrossEncoder(folder, max_length=40).rank(cm.LONG_Q, docs)
    code, out, err = run(capsys, "rerank", cm.LONG_Q, *docs, "--model", folder, "--max-length", "40", "--json")
    assert code == 0, err
    np.testing.assert_allclose([r["score"] for r in rows(out)], [e["score"] for e in expected], atol=1e-5, rtol=0)
    assert [r["index"] for r in rows(out)] == [e["corpus_id"] for e in expected]


@pytest.mark.parametrize("name, data, extra", [
    ("docs.txt", "\n".join(["", DOCS[0], DOCS[1], "   ", DOCS[2], DOCS[3], DOCS[4], "", DOCS[5]]) + "\n", []),
    ("docs.jsonl", "".join(json.dumps({"id": i, "body": d}) + "\n" + ("\n" if i == 2 else "")
     for i, d in enumerate(DOCS)), ["--field", "body"]),
    ("docs.csv", "id,passage\n" + "".join(f'{i},"{d}"\n' for i, d in enumerate(DOCS)), ["--column", "passage"]),
    ("docs.tsv", "passage\n" + "".join(f"{d}\n" for d in DOCS), ["--column", "passage"]),
])
def test_file_inputs_give_the_line_of_each_text(capsys, tmp_path, folder, reranker, name, data, extra):
    src = tmp_path / name
    src.write_text(data, encoding="utf-8")
    line_of = {"docs.txt": [2, 3, 5, 6, 7, 9], "docs.jsonl": [1, 2, 3, 5, 6, 7], "docs.csv": [2, 3, 4, 5, 6, 7],
               "docs.tsv": [2, 3, 4, 5, 6, 7]}[name]
    expected = reranker.rank(QUERY, DOCS)
    code, out, err = run(capsys, "rerank", QUERY, "--input", src, *extra, "--model", folder, "--json")
    assert code == 0, err
    got = rows(out)
    assert [r["index"] for r in got] == [e["corpus_id"] for e in expected]
    assert [r["line"] for r in got] == [line_of[e["corpus_id"]] for e in expected]
    assert [r["text"] for r in got] == [DOCS[e["corpus_id"]] for e in expected]
    np.testing.assert_allclose([r["score"] for r in got], [e["score"] for e in expected], atol=1e-5, rtol=0)

    code, out, err = run(capsys, "rerank", QUERY, "-i", src, *extra, "--model", folder, "-k", "1")
    first = expected[0]["corpus_id"]
    assert code == 0 and out == f"   1  {expected[0]['score']:9.4f}  {f'line {line_of[first]}':<11} {DOCS[first]}\n"


def test_standard_input(folder, reranker):
    data = "\n".join(DOCS) + "\n"
    done = subprocess.run([sys.executable, "-m", "tinyminilm", "rerank", QUERY, "-i", "-", "--model", str(folder),
                           "--json"], input=data.encode(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    got = [json.loads(line) for line in done.stdout.decode().splitlines()]
    expected = reranker.rank(QUERY, DOCS)
    assert [(r["index"], r["line"]) for r in got] == [(e["corpus_id"], e["corpus_id"] + 1) for e in expected]


BAD = [b for b in BAD_INPUTS if "--truncate-dim" not in b[2]] + [  # embed's bad inputs, and one more
    ("open.csv", b'text\nfirst\n"never closed\n', [], "open.csv:3: malformed CSV: the quote opened in the row")]


@pytest.mark.parametrize("name, data, extra, message", BAD, ids=[b[0] + "".join(b[2]) for b in BAD])
def test_bad_input_names_the_file_and_line(capsys, tmp_path, folder, name, data, extra, message):
    if data is not None:
        (tmp_path / name).write_bytes(data)
    code, out, err = run(capsys, "rerank", QUERY, "-i", tmp_path / name, *extra, "--model", folder)
    assert code == 2 and out == ""
    assert err.startswith("tinyminilm: error: ") and err.count("\n") == 1 and message in err, err


def test_bad_arguments_are_one_line_errors(capsys, tmp_path, folder, model_dir):
    three = cm.make_folder("three-labels", model_dir, tmp_path / "three")
    for argv, message in [
        (["rerank", QUERY, "--model", folder], "give the texts as arguments after the query or --input FILE"),
        (["rerank", QUERY, "a", "-i", tmp_path / "x.txt", "--model", folder], "(one of the two)"),
        (["rerank", QUERY, "-i", tmp_path / "missing.txt", "--model", folder], "missing.txt: no such file"),
        (["rerank", QUERY, "a", "--model", folder, "--max-length", "1000"],
         "--max-length: max_length must be an integer from 3 to 512"),
        (["rerank", QUERY, "a", "--model", three], "rank: this cross-encoder has 3 labels"),
        (["rerank", QUERY, "a", "--model", tmp_path / "nothing-here"], "nothing-here"),
        (["rerank", QUERY, "a", "--model", folder, "--top-k", "0"], "argument --top-k/-k: must be a positive integer"),
        (["rerank", QUERY, "a", "--model", folder, "--activation", "softplus"],
         "argument --activation: invalid choice"),
    ]:
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "", (argv, out)
        assert message in err and "Traceback" not in err, (argv, err)


def test_the_default_model_is_the_one_sentence_transformers_reranks_with():
    args = build_parser().parse_args(["rerank", "q", "d"])
    assert args.model == "cross-encoder/ms-marco-MiniLM-L6-v2" and args.batch_size == 32 and args.top_k is None
