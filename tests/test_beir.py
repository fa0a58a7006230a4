"""tinyminilm.evaluation.load_beir: a BEIR folder read into the evaluator's inputs, and every bad input named by
file, line and field.

The good folder is the retrieval data of tests/evaluation_cases.py written in BEIR's layout (titles split off the
texts), so evaluating it must give sentence-transformers' golden results for that data.
"""

from __future__ import annotations

import json
from pathlib import Path

import evaluation_cases as C
import pytest
from test_evaluation import GOLDEN, assert_matches, run_twice

from tinyminilm.errors import ArgumentError, InputError
from tinyminilm.evaluation import InformationRetrievalEvaluator, load_beir


def write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple], split: str = "test") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"] + ["\t".join(map(str, row)) for row in qrels]
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def text_data_folder(folder: Path) -> Path:
    """TEXT_QUERIES, TEXT_CORPUS and beir_relevant() as a BEIR folder: the first three words of each document as
    its title, and one judgement with score 0 (judged, not relevant)."""
    corpus = []
    for _id, text in C.TEXT_CORPUS.items():
        words = text.split(" ")
        corpus.append({"_id": _id, "title": " ".join(words[:3]), "text": " ".join(words[3:])})
    queries = [{"_id": q, "text": t} for q, t in C.TEXT_QUERIES.items()]
    qrels = [(q, d, 1) for q, docs in C.beir_relevant().items() for d in docs] + [("q_none", "d1", 0)]
    return write_beir(folder, corpus, queries, qrels)


@pytest.mark.parametrize("case", C.BEIR_CASES, ids=[c["case"] for c in C.BEIR_CASES])
def test_a_beir_folder_evaluates_as_sentence_transformers_on_the_same_data(model, case, tmp_path):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    queries, corpus, relevant = load_beir(text_data_folder(tmp_path / "data"))
    assert queries == C.TEXT_QUERIES and corpus == C.TEXT_CORPUS
    assert relevant == {q: set(docs) for q, docs in C.beir_relevant().items()}
    ev = InformationRetrievalEvaluator(queries, corpus, relevant, **case["kwargs"])
    assert_matches(run_twice(ev, model, tmp_path / "out"), golden["information_retrieval"][case["case"]])


def test_title_and_text_are_joined_by_one_space_and_stripped(tmp_path):
    corpus = [{"_id": "a", "title": "Title", "text": "body"}, {"_id": "b", "title": "", "text": " only text "},
              {"_id": "c", "text": "no title"}, {"_id": "d", "title": None, "text": "null title"},
              {"_id": 7, "text": "int id"}]
    folder = write_beir(tmp_path, corpus, [{"_id": "q", "text": "query"}], [("q", "a", 2), ("q", "7", 0)])
    queries, docs, relevant = load_beir(folder)
    assert docs == {"a": "Title body", "b": "only text", "c": "no title", "d": "null title", "7": "int id"}
    assert queries == {"q": "query"} and relevant == {"q": {"a"}}


def good(tmp_path: Path, split: str = "test") -> Path:
    return write_beir(tmp_path, [{"_id": "d1", "text": "one"}, {"_id": "d2", "text": "two"}],
                      [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}],
                      [("q1", "d1", 1), ("q2", "d2", 1)], split)


def replace_line(path: Path, line: int, text: str, newline: bool = True) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + ("\n" if newline else ""), encoding="utf-8")


@pytest.mark.parametrize("file, line, text, message", [
    ("corpus.jsonl", 2, '{"_id": "d2", "text": "two"', r"corpus.jsonl:2: malformed JSON"),
    ("corpus.jsonl", 2, '{"_id": "d2"}', r"corpus.jsonl:2: no field 'text'"),
    ("corpus.jsonl", 2, '{"text": "two"}', r"corpus.jsonl:2: no field '_id'"),
    ("corpus.jsonl", 2, '{"_id": "d2", "text": 2}', r"corpus.jsonl:2: field 'text' is int"),
    ("corpus.jsonl", 2, '{"_id": "d2", "title": 3, "text": "two"}', r"corpus.jsonl:2: field 'title' is int"),
    ("corpus.jsonl", 2, '{"_id": ["d2"], "text": "two"}', r"corpus.jsonl:2: field '_id' is list"),
    ("corpus.jsonl", 2, '{"_id": "d1", "text": "two"}',
     r"corpus.jsonl:2: field '_id': 'd1' is a duplicate \(first on line 1\)"),
    ("corpus.jsonl", 2, '["d2", "two"]', r"corpus.jsonl:2: expected a JSON object"),
    ("corpus.jsonl", 2, '{"_id": "d2", "text": "\\ud800"}', r"corpus.jsonl:2: the text holds a lone surrogate"),
    ("queries.jsonl", 1, '{"_id": "q1", "txt": "first"}', r"queries.jsonl:1: no field 'text'"),
    ("queries.jsonl", 2, '{"_id": "q1", "text": "again"}', r"queries.jsonl:2: field '_id': 'q1' is a duplicate"),
    ("qrels/test.tsv", 1, "query\tdoc\tscore", r"test.tsv:1: the header is 'query\\tdoc\\tscore'"),
    ("qrels/test.tsv", 2, "q1\td1", r"test.tsv:2: 2 tab-separated column\(s\), expected 3"),
    ("qrels/test.tsv", 2, "q1\td1\t1\textra", r"test.tsv:2: 4 tab-separated column\(s\)"),
    ("qrels/test.tsv", 2, "q1\td1\thigh", r"test.tsv:2: field 'score' is 'high', not an integer"),
    ("qrels/test.tsv", 2, "q1\td1\t1.0", r"test.tsv:2: field 'score' is '1.0', not an integer"),
    ("qrels/test.tsv", 2, "q9\td1\t1", r"test.tsv:2: field 'query-id': 'q9' is not an _id in .*queries.jsonl"),
    ("qrels/test.tsv", 3, "q2\td9\t1", r"test.tsv:3: field 'corpus-id': 'd9' is not an _id in .*corpus.jsonl"),
    ("qrels/test.tsv", 3, "q1\td1\t0",
     r"test.tsv:3: field 'corpus-id': query 'q1' judges 'd1' again \(first on line 2\)"),
])
def test_each_bad_line_is_named_by_file_line_and_field(tmp_path, file, line, text, message):
    folder = good(tmp_path)
    replace_line(folder / file, line, text)
    with pytest.raises(InputError, match=message) as caught:
        load_beir(folder)
    assert str(folder / file) in str(caught.value)


@pytest.mark.parametrize("file, text, message", [
    ("corpus.jsonl", '{"_id": "d2", "te',
     r"corpus.jsonl:2: malformed JSON .*the file ends without a newline, so it looks truncated"),
    ("qrels/test.tsv", "q2\td", r"test.tsv:3: 2 tab-separated column\(s\), expected 3 .*looks truncated"),
    ("qrels/test.tsv", "q2\td2\t", r"test.tsv:3: field 'score' is '', not an integer"),
])
def test_a_truncated_file_fails_the_whole_load(tmp_path, file, text, message):
    folder = good(tmp_path)
    replace_line(folder / file, 3 if file.endswith(".tsv") else 2, text, newline=False)
    with pytest.raises(InputError, match=message):
        load_beir(folder)


@pytest.mark.parametrize("remove, message", [
    ("corpus.jsonl", r"corpus.jsonl: no such file"),
    ("queries.jsonl", r"queries.jsonl: no such file"),
    ("qrels/test.tsv", r"qrels/test.tsv: no such file"),
])
def test_a_missing_file_is_named(tmp_path, remove, message):
    folder = good(tmp_path)
    (folder / remove).unlink()
    with pytest.raises(InputError, match=message):
        load_beir(folder)


def test_folder_split_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_beir(tmp_path / "absent")
    folder = good(tmp_path / "a", split="dev")
    assert load_beir(folder, split="dev")[2] == {"q1": {"d1"}, "q2": {"d2"}}
    with pytest.raises(InputError, match=r"qrels/test.tsv: no such file"):
        load_beir(folder)
    with pytest.raises(ArgumentError, match="split must be the name of a file in qrels/"):
        load_beir(folder, split="../dev")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match="dev.tsv: no judgement has a score > 0"):
        load_beir(folder, split="dev")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    with pytest.raises(InputError, match="dev.tsv: no judgements after the header"):
        load_beir(folder, split="dev")
    (folder / "corpus.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="corpus.jsonl: no records"):
        load_beir(folder, split="dev")
    (folder / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:1: not valid UTF-8"):
        load_beir(folder, split="dev")
