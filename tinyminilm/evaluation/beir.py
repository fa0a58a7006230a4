"""Reading a BEIR-layout folder into what InformationRetrievalEvaluator takes: queries, corpus, relevant_docs.

    folder/corpus.jsonl        one JSON object per line: "_id", "text", and optionally "title"
    folder/queries.jsonl       one JSON object per line: "_id", "text"
    folder/qrels/<split>.tsv   the header "query-id<TAB>corpus-id<TAB>score", then one judgement per line

A document's text is its title and text joined by one space, then stripped: (title + " " + text).strip(), as BEIR's
SentenceBERT.encode_corpus joins them (beir/retrieval/models/sentence_bert.py, sep=" ") and as sentence-transformers'
InformationRetrievalEvaluator example does; no title, or a null one, leaves the text stripped. A judgement is
relevant when its score is > 0 (BEIR's and pytrec_eval's rule); an id may be a JSON string or integer (read as its
decimal text, since qrels ids are text).

Every line of the three files is checked before anything is returned, so a broken or truncated file never yields
metrics. An InputError names the file, the line and the field: a missing file, malformed JSON, a missing or
mistyped field, a duplicate id, a qrels line with other than 3 columns or a non-integer score, a qrels id that is
not a query or not a document, a repeated judgement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, InputError
from ..files import TextFile, check_unicode, numbered_lines

QRELS_HEADER = ("query-id", "corpus-id", "score")


def load_beir(folder: str | Path, split: str = "test") -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(queries {id: text}, corpus {id: title + " " + text}, relevant_docs {query id: {corpus ids with score > 0}})
    from a BEIR folder's queries.jsonl, corpus.jsonl and qrels/<split>.tsv. relevant_docs holds the queries with at
    least one relevant document; `queries` holds every query of the file, judged or not. Raises InputError."""
    folder = Path(folder)
    if not isinstance(split, str) or not split or any(c in split for c in "/\\") or split in (".", ".."):
        raise ArgumentError(f"split must be the name of a file in qrels/ without .tsv (e.g. 'test'), got {split!r}")
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; a BEIR folder holds corpus.jsonl, queries.jsonl and "
                         f"qrels/{split}.tsv")
    corpus = {_id: (record["title"] + " " + record["text"]).strip()
              for _id, record in _records(folder / "corpus.jsonl", with_title=True)}
    queries = {_id: record["text"] for _id, record in _records(folder / "queries.jsonl", with_title=False)}
    return queries, corpus, _qrels(folder / "qrels" / f"{split}.tsv", queries, corpus, folder)


def _source(path: Path) -> TextFile:
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise InputError(f"{path}: {what}; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    return TextFile(path, "jsonl" if path.suffix == ".jsonl" else "tsv")


def _text_field(src: TextFile, n: int, record: dict, field: str, optional: bool = False) -> str:
    if field not in record:
        if optional:
            return ""
        keys = ", ".join(map(repr, list(record)[:8])) or "none"
        raise InputError(f"{src.label}:{n}: no field {field!r} (this record has: {keys})")
    value = record[field]
    if value is None and optional:
        return ""
    if field == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InputError(f"{src.label}:{n}: field {field!r} is {type(value).__name__}, expected a string")
    if field == "_id" and not value:
        raise InputError(f"{src.label}:{n}: field '_id' is empty")
    return check_unicode(src, n, value)


def _records(path: Path, with_title: bool) -> Iterator[tuple[str, dict[str, str]]]:
    """(_id, {"text", "title"}) per record of a BEIR .jsonl file, after checking the whole record."""
    src = _source(path)
    first_line: dict[str, int] = {}
    for n, line in numbered_lines(src):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line.rstrip("\r\n"))  # so that an error at the end of a line has its column
        except ValueError as e:
            cut = "; the file ends without a newline, so it looks truncated" if not line.endswith("\n") else ""
            raise InputError(f"{src.label}:{n}: malformed JSON ({getattr(e, 'msg', e)}, column "
                             f"{getattr(e, 'colno', '?')}){cut}; each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise InputError(f"{src.label}:{n}: expected a JSON object with '_id' and 'text', got "
                             f"{type(record).__name__}")
        _id = _text_field(src, n, record, "_id")
        if _id in first_line:
            raise InputError(f"{src.label}:{n}: field '_id': {_id!r} is a duplicate (first on line {first_line[_id]})")
        first_line[_id] = n
        fields = {"text": _text_field(src, n, record, "text")}
        if with_title:
            fields["title"] = _text_field(src, n, record, "title", optional=True)
        yield _id, fields
    if not first_line:
        raise InputError(f"{src.label}: no records; each line must be a JSON object with '_id' and 'text'")


def _qrels(path: Path, queries: dict[str, str], corpus: dict[str, str], folder: Path) -> dict[str, set[str]]:
    """{query id: relevant corpus ids} from a qrels .tsv, every id checked against the queries and the corpus."""
    src = _source(path)
    lines = numbered_lines(src)
    n, line = next(lines, (1, ""))
    if tuple(line.rstrip("\r\n").split("\t")) != QRELS_HEADER:
        raise InputError(f"{src.label}:{n}: the header is {line.rstrip(chr(13) + chr(10))!r}; expected "
                         "'query-id<TAB>corpus-id<TAB>score' (BEIR reads the first line as a header)")
    relevant: dict[str, set[str]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for n, line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        cols = text.split("\t")
        if len(cols) != 3:
            cut = "; the file ends without a newline, so it looks truncated" if not line.endswith("\n") else ""
            raise InputError(f"{src.label}:{n}: {len(cols)} tab-separated column(s), expected 3 (query-id, "
                             f"corpus-id, score){cut}")
        qid, cid, score = cols
        try:
            value = int(score)
        except ValueError:
            raise InputError(f"{src.label}:{n}: field 'score' is {score!r}, not an integer") from None
        for field, _id, known, file in (("query-id", qid, queries, "queries.jsonl"),
                                        ("corpus-id", cid, corpus, "corpus.jsonl")):
            if _id not in known:
                raise InputError(f"{src.label}:{n}: field {field!r}: {_id!r} is not an _id in {folder / file}")
        if (qid, cid) in first_line:
            raise InputError(f"{src.label}:{n}: field 'corpus-id': query {qid!r} judges {cid!r} again (first on "
                             f"line {first_line[qid, cid]})")
        first_line[qid, cid] = n
        if value > 0:
            relevant.setdefault(qid, set()).add(cid)
    if not first_line:
        raise InputError(f"{src.label}: no judgements after the header")
    if not relevant:
        raise InputError(f"{src.label}: no judgement has a score > 0, so no document is relevant to any query")
    return relevant
