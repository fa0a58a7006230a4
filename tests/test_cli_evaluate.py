"""`tinyminilm evaluate DIR` end to end on a BEIR folder written here: 50 real docstrings (every 20th text of the
`docs` fixture), queries of our own for specific ones, and their qrels. The numbers are checked against
InformationRetrievalEvaluator called directly (itself golden-tested against sentence-transformers in
test_evaluation.py), the reranked row against a rescoring done by hand, and each bad input against its message."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import cross_models as cm
import tiny_bert
import tinyminilm
from tinyminilm.cli import main
from tinyminilm.evaluation import InformationRetrievalEvaluator
from tinyminilm.evaluation.report import Run, failures

K_LISTS = {"precision_recall_at_k": [1, 3, 5, 10, 100]}  # the CLI's: sentence-transformers' defaults, plus 100

# query id -> (query, the docs indices (into docs[::20]) relevant to it)
QUERIES = {
    "ast": ("turn python source code into a syntax tree", [1]),
    "b32": ("encode bytes as base32 text", [3]),
    "open": ("open a file for appending in text mode", [5, 33]),
    "diff": ("show the differences between two lists of lines", [14]),
    "i18n": ("make my program speak several languages", [22]),
    "gzip": ("read the header of a gzip file", [23]),
    "ipv6": ("expand a shortened IPv6 address", [29]),
    "log": ("add context to every log message", [32]),
    "walk": ("list the subfolders of a directory tree", [39]),
    "pdb": ("how do I start the debugger", [40]),
    "qp": ("quoted-printable encoding for email", [47]),
    # worded away from their documents: the pinned model ranks these 2nd to 4th (--failures has something to show)
    "template": ("what went wrong in a template", [11]),
    "with": ("cleanup when leaving a with block", [12]),
    "lines": ("where the source lines are", [16]),
    "ratio": ("fast estimate of how similar two sequences are", [15]),
}
UNJUDGED = ("plum", "my grandmother's plum dumpling recipe")  # in queries.jsonl, not in the qrels


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_beir(folder: Path, corpus: dict[str, str], queries: dict[str, str],
               qrels: list[tuple[str, str, int]]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": _id, "title": "", "text": text}) + "\n" for _id, text in corpus.items())
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": _id, "text": text}) + "\n" for _id, text in queries.items())
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def data(docs) -> tuple[dict, dict, dict]:
    """(queries, corpus, relevant_docs) of the test folder, as load_beir should read them."""
    corpus = {f"s{i}": text for i, text in enumerate(docs[::20])}
    queries = {qid: text for qid, (text, _) in QUERIES.items()} | {UNJUDGED[0]: UNJUDGED[1]}
    relevant = {qid: {f"s{i}" for i in rel} for qid, (_, rel) in QUERIES.items()}
    return queries, corpus, relevant


@pytest.fixture(scope="module")
def beir(tmp_path_factory, data) -> Path:
    queries, corpus, relevant = data
    qrels = [(q, d, 1) for q, ds in relevant.items() for d in sorted(ds)] + [("gzip", "s0", 0)]  # 0: not relevant
    return write_beir(tmp_path_factory.mktemp("beir") / "stdlib", corpus, queries, qrels)


@pytest.fixture(scope="module")
def prompted(tmp_path_factory, model_dir) -> Path:
    """The pinned model in another folder, with query and document prompts and dot-product similarity."""
    folder = tmp_path_factory.mktemp("prompted") / "minilm-prompted"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns(".*", "model.safetensors"))
    (folder / "model.safetensors").symlink_to(Path(model_dir) / "model.safetensors")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "document": "passage: "}, "similarity_fn_name": "dot"}))
    return folder


@pytest.fixture(scope="module")
def cross(tmp_path_factory, model_dir) -> Path:
    """A random-weight cross-encoder folder of ms-marco-MiniLM-L6-v2's shape (tests/cross_models.py)."""
    return cm.make_folder("st4-config", model_dir, tmp_path_factory.mktemp("cross") / "ce")


def direct(data, model) -> dict[str, float]:
    queries, corpus, relevant = data
    return InformationRetrievalEvaluator(queries, corpus, relevant, **K_LISTS)(model)


def json_rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def table_row(out: str, label: str) -> list[float]:
    line = next(line for line in out.splitlines() if line.startswith(label + "  "))
    return [float(v) for v in line[len(label):].split()]


# --------------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------------

def test_json_is_the_evaluators_dict_and_holds_sentence_transformers_default_keys(capsys, beir, data, model):
    code, out, err = run(capsys, "evaluate", beir, "--json")  # the default model: the pinned one
    assert code == 0, err
    [row] = json_rows(out)
    assert row["model"] == tinyminilm.MODEL_ID and row["reranker"] is None and "failures" not in row
    assert row["metrics"] == direct(data, model)
    queries, corpus, relevant = data
    defaults = InformationRetrievalEvaluator(queries, corpus, relevant)(model)
    assert {k: row["metrics"][k] for k in defaults} == defaults  # the defaults' keys and values, plus @100
    assert 0 < row["metrics"]["cosine_ndcg@10"] < 1


def test_the_table_shows_the_columns_of_the_evaluators_dict(capsys, beir, data, model_dir, model):
    code, out, err = run(capsys, "evaluate", beir, "--model", model_dir, "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{beir} (split test): 15 queries with a relevant document (of 16), 50 documents, " \
                       "16 relevant judgements"
    assert lines[1].split() == ["model", "nDCG@10", "MRR@10", "Recall@10", "Recall@100", "MAP@100", "Acc@1"]
    expected = direct(data, model)
    keys = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100", "accuracy@1"]
    assert table_row(out, str(model_dir)) == [round(expected[f"cosine_{k}"], 4) for k in keys]
    assert len(lines) == 3 and err == ""


def test_models_side_by_side_each_with_its_own_prompts_and_similarity(capsys, beir, data, model_dir, model, prompted):
    code, out, err = run(capsys, "evaluate", beir, "--model", model_dir, "--model", prompted, "--json")
    assert code == 0, err
    first, second = json_rows(out)
    assert (first["model"], second["model"]) == (str(model_dir), str(prompted))
    assert first["metrics"] == direct(data, model)
    prompted_model = tinyminilm.load(prompted)
    assert prompted_model.prompts["query"] == "query: "
    assert second["metrics"] == direct(data, prompted_model)
    assert set(second["metrics"]) == {k.replace("cosine_", "dot_") for k in first["metrics"]}
    assert second["metrics"]["dot_ndcg@10"] != first["metrics"]["cosine_ndcg@10"]  # the prompts changed the vectors

    code, out, err = run(capsys, "evaluate", beir, "--model", model_dir, "--model", prompted)
    assert code == 0, err
    assert table_row(out, str(prompted)) == [round(second["metrics"][f"dot_{k}"], 4) for k in
                                             ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100", "accuracy@1")]


def test_truncate_dim_is_the_evaluators_and_is_checked_against_each_model(capsys, beir, data, model):
    code, out, err = run(capsys, "evaluate", beir, "--truncate-dim", 64, "--batch-size", 7, "--json")
    assert code == 0, err
    queries, corpus, relevant = data
    expected = InformationRetrievalEvaluator(queries, corpus, relevant, truncate_dim=64, **K_LISTS)(model)
    assert json_rows(out)[0]["metrics"] == expected != direct(data, model)
    code, out, err = run(capsys, "evaluate", beir, "--truncate-dim", 385)
    assert code == 2 and out == ""
    assert err == "tinyminilm: error: --truncate-dim must be an integer from 1 to 384 (the model's dimension), " \
                  "got 385\n"


def test_a_second_model_of_another_shape_gets_its_own_row(capsys, beir, data, tmp_path, model_dir, model):
    tiny = tiny_bert.make_folder(tmp_path / "tiny", "pooling_mode_mean_tokens", True)
    code, out, err = run(capsys, "evaluate", beir, "--model", model_dir, "--model", tiny, "--json")
    assert code == 0, err
    rows = json_rows(out)
    assert [r["model"] for r in rows] == [str(model_dir), str(tiny)]
    tiny_model = tinyminilm.load(tiny)
    assert tiny_model.get_embedding_dimension() != model.get_embedding_dimension()
    assert rows[0]["metrics"] == direct(data, model)
    assert rows[1]["metrics"] == direct(data, tiny_model) != rows[0]["metrics"]


def test_reranking_rescores_each_querys_top_k_as_done_by_hand(capsys, beir, data, model, cross):
    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", cross, "--rerank-top-k", 10, "--json")
    assert code == 0, err
    retrieved, reranked = json_rows(out)
    assert (reranked["model"], reranked["reranker"], reranked["rerank_top_k"]) == (tinyminilm.MODEL_ID, str(cross), 10)
    assert retrieved["metrics"] == direct(data, model)

    queries, corpus, relevant = data
    ev = InformationRetrievalEvaluator(queries, corpus, relevant, **K_LISTS)
    ce = tinyminilm.CrossEncoder(cross)
    by_hand = []
    for qid, hits in zip(ev.queries_ids, ev.search(model)["cosine"]):
        top = hits[:10]
        scores = ce.predict([(queries[qid], corpus[h["corpus_id"]]) for h in top])
        by_hand.append([{"corpus_id": h["corpus_id"], "score": float(s)} for h, s in zip(top, scores)])
    expected = {f"cosine_{metric.replace('@k', f'@{k}')}": value
                for metric, by_k in ev.compute_metrics(by_hand).items() for k, value in by_k.items()}
    assert list(reranked["metrics"]) == list(retrieved["metrics"])
    assert reranked["metrics"] == pytest.approx(expected, abs=1e-12)
    assert reranked["metrics"] != retrieved["metrics"]  # random weights: another order

    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", cross, "--rerank-top-k", 10)
    assert code == 0, err
    label = f"{tinyminilm.MODEL_ID} + {cross} (top 10)"
    assert table_row(out, label)[0] == round(expected["cosine_ndcg@10"], 4)


def test_rerank_top_k_beyond_the_deepest_cutoff_is_refused_before_any_model_loads(capsys, beir, cross, monkeypatch):
    monkeypatch.setattr(tinyminilm, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", cross, "--rerank-top-k", 101)
    assert code == 2 and out == ""
    assert err == "tinyminilm: error: --rerank-top-k must be an integer from 1 to 100 (the deepest cutoff of the " \
                  "metrics: no more documents are kept), got 101\n"


def test_a_cross_encoder_with_several_labels_is_refused_before_any_retrieval(capsys, beir, tmp_path, model_dir):
    three = cm.make_folder("three-labels", model_dir, tmp_path / "three")
    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", three)
    assert code == 2 and out == ""
    assert err.startswith(f"tinyminilm: error: --rerank-model {three}: this cross-encoder has 3 labels (")
    assert "ranking needs one relevance score per pair" in err and err.count("\n") == 1


# --------------------------------------------------------------------------------------------------------------
# --failures
# --------------------------------------------------------------------------------------------------------------

def first_relevant_ranks(data, model) -> dict[str, int | None]:
    queries, corpus, relevant = data
    ev = InformationRetrievalEvaluator(queries, corpus, relevant, **K_LISTS)
    ranks = {}
    for qid, hits in zip(ev.queries_ids, ev.search(model)["cosine"]):
        ranks[qid] = next((r for r, h in enumerate(hits, 1) if h["corpus_id"] in relevant[qid]), None)
    return ranks


def test_failures_list_the_queries_whose_first_relevant_document_ranks_worst(capsys, beir, data, model):
    ranks = first_relevant_ranks(data, model)
    worst = sorted((q for q in ranks if ranks[q] != 1), key=lambda q: -ranks[q])[:3]
    assert len(worst) == 3 and ranks[worst[0]] > ranks[worst[2]] > 1  # the data has failures of distinct ranks

    code, out, err = run(capsys, "evaluate", beir, "--failures", 3, "--json")
    assert code == 0, err
    [row] = json_rows(out)
    assert [(f["query_id"], f["rank"]) for f in row["failures"]] == [(q, ranks[q]) for q in worst]
    queries, corpus, _ = data
    for f in row["failures"]:
        assert f["query"] == queries[f["query_id"]] and f["depth"] == 100
        assert f["top_hit"]["text"] == corpus[f["top_hit"]["corpus_id"]]
        assert f["relevant"]["corpus_id"] in data[2][f["query_id"]]

    code, out, err = run(capsys, "evaluate", beir, "--failures", 3)
    assert code == 0, err
    heading = f"\nWorst queries of {tinyminilm.MODEL_ID}, by the rank of their first relevant document (up to 3):\n"
    blocks = re.split(r"\n(?=  \[)", out.split(heading)[1].rstrip("\n"))
    assert len(blocks) == 3
    for block, f in zip(blocks, row["failures"]):
        assert block.startswith(f"  [{f['query_id']}] {f['query']}\n")
        assert f"first relevant document: rank {f['rank']}\n" in block
        assert f"[{f['top_hit']['corpus_id']}] {' '.join(f['top_hit']['text'].split())[:60]}" in block


def test_a_reranked_row_names_a_relevant_document_it_never_saw(capsys, beir, data, cross):
    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", cross, "--rerank-top-k", 1, "--failures", 20,
                         "--json")
    assert code == 0, err
    retrieved, reranked = json_rows(out)
    missing = [f for f in reranked["failures"] if f["rank"] is None]
    assert missing and all(f["depth"] == 1 and f["relevant"]["score"] is None for f in missing)
    assert {f["query_id"] for f in reranked["failures"]} == {f["query_id"] for f in retrieved["failures"]}
    code, out, err = run(capsys, "evaluate", beir, "--rerank-model", cross, "--rerank-top-k", 1, "--failures", 20)
    assert "first relevant document: not in the top 1\n" in out


def test_failures_order_and_what_counts_as_one():
    ev = SimpleNamespace(  # what failures() reads of an evaluator
        queries_ids=["a", "b", "c", "d", "e"], queries=["qa", "qb", "qc", "qd", "qe"], corpus_ids=["x", "y", "z"],
        corpus=["text x", "text y", "text z"],
        relevant_docs={"a": {"x"}, "b": {"z"}, "c": {"y"}, "d": {"z", "w"}, "e": {"w"}})

    hits = [{"corpus_id": "y", "score": 0.5}, {"corpus_id": "x", "score": 0.5}, {"corpus_id": "z", "score": 0.1}]
    found = failures(ev, Run({}, "cosine", [hits] * 5, depth=2), 10)
    # ties rank by corpus id: x, y, z; depth 2 leaves z out. a: rank 1 (no failure), b: none, c: 2, d: none, e: none
    assert [(f["query_id"], f["rank"]) for f in found] == [("b", None), ("d", None), ("e", None), ("c", 2)]
    assert found[0]["top_hit"] == {"corpus_id": "x", "score": 0.5, "text": "text x"}
    assert found[1]["relevant"] == {"corpus_id": "z", "score": None, "text": "text z"}  # in the corpus, first
    assert found[2]["relevant"] == {"corpus_id": "w", "score": None, "text": ""}
    assert found[3]["relevant"] == {"corpus_id": "y", "score": 0.5, "text": "text y"}
    assert len(failures(ev, Run({}, "cosine", [hits] * 5, depth=2), 2)) == 2


# --------------------------------------------------------------------------------------------------------------
# Progress and bad input
# --------------------------------------------------------------------------------------------------------------

def test_progress_bars_on_stderr_only_when_asked_or_on_a_terminal(capsys, beir):
    code, out, err = run(capsys, "evaluate", beir, "--progress", "--json")
    assert code == 0 and "Encoding" in err and "Corpus Chunks" in err
    assert len(json_rows(out)) == 1
    code, out, err = run(capsys, "evaluate", beir, "--json")  # stderr is not a terminal here
    assert code == 0 and err == ""


def broken(beir: Path, tmp_path: Path, name: str, edit) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(beir, folder)
    edit(folder / name)
    return folder


def replace_line(n: int, text: str):
    def edit(path: Path) -> None:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[n - 1] = text
        path.write_text("".join(lines), encoding="utf-8")
    return edit


def cut_inside_the_last_line(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-4])  # the last line loses its newline and 3 characters


@pytest.mark.parametrize("name,edit,message", [
    ("queries.jsonl", Path.unlink, ("queries.jsonl: no such file; a BEIR folder holds corpus.jsonl, queries.jsonl "
                                    "and qrels/<split>.tsv")),
    ("corpus.jsonl", replace_line(7, '{"_id": "s6", "text": "no closing brace"\n'),
     "corpus.jsonl:7: malformed JSON (Expecting ',' delimiter, column 41); each line must be one JSON object"),
    ("queries.jsonl", replace_line(3, '{"_id": "open"}\n'),
     "queries.jsonl:3: no field 'text' (this record has: '_id')"),
    ("qrels/test.tsv", replace_line(5, "i18n\ts999\t1\n"),
     "test.tsv:5: field 'corpus-id': 's999' is not an _id in {folder}/corpus.jsonl"),
    ("qrels/test.tsv", replace_line(2, "nobody\ts1\t1\n"),
     "test.tsv:2: field 'query-id': 'nobody' is not an _id in {folder}/queries.jsonl"),
    ("corpus.jsonl", cut_inside_the_last_line, "corpus.jsonl:50: malformed JSON"),
    ("qrels/test.tsv", cut_inside_the_last_line, ("test.tsv:18: 2 tab-separated column(s), expected 3 (query-id, "
                                                  "corpus-id, score); the file ends without a newline, so it looks "
                                                  "truncated")),
])
def test_bad_input_is_one_line_naming_the_file_and_line_and_no_metrics(capsys, monkeypatch, beir, tmp_path, name,
                                                                       edit, message):
    folder = broken(beir, tmp_path, name, edit)
    monkeypatch.setattr(tinyminilm, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    code, out, err = run(capsys, "evaluate", folder)
    assert code == 2 and out == ""
    assert err.startswith("tinyminilm: error: ") and err.count("\n") == 1, err
    assert message.format(folder=folder) in err
    assert str(folder) in err


def test_a_truncated_corpus_says_it_looks_truncated(capsys, beir, tmp_path):
    folder = broken(beir, tmp_path, "corpus.jsonl", cut_inside_the_last_line)
    code, out, err = run(capsys, "evaluate", folder, "--json")
    assert code == 2 and out == ""
    assert err.rstrip().endswith("each line must be one JSON object"), err
    assert "the file ends without a newline, so it looks truncated" in err


def test_a_missing_split_or_folder_is_named(capsys, beir, tmp_path):
    code, out, err = run(capsys, "evaluate", beir, "--split", "dev")
    assert code == 2 and out == "" and f"{beir}/qrels/dev.tsv: no such file" in err
    code, out, err = run(capsys, "evaluate", tmp_path / "nowhere")
    assert code == 2 and out == "" and f"{tmp_path / 'nowhere'}: no such folder" in err
