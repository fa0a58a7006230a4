"""`tinyminilm evaluate DIR`: how well one or more models retrieve on a BEIR folder, optionally reranked by a
cross-encoder, with the queries that fail worst. The work is tinyminilm.evaluation.report's; this module formats."""

from __future__ import annotations

import argparse
import json

from .common import check_dims, encoding_options, load_cross_encoder, load_named, positive_int, wants_progress

TEXT_WIDTH = 100  # characters of a document shown per line in --failures (--json gives the whole text)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `evaluate` on the subparsers of tinyminilm's command line."""
    e = sub.add_parser("evaluate", parents=[encoding_options()], help="retrieval metrics on a BEIR folder",
                       description="Retrieve every judged query of a BEIR folder (corpus.jsonl, queries.jsonl, "
                                   "qrels/SPLIT.tsv) with each model and print nDCG@10, MRR@10, Recall@10, "
                                   "Recall@100, MAP@100 and Accuracy@1, one row per model (and per reranker).")
    e.add_argument("folder", metavar="DIR", help="the BEIR folder")
    e.add_argument("--split", default="test", help="read the judgements of qrels/SPLIT.tsv (default test)")
    e.add_argument("--model", action="append", default=None, metavar="ID_OR_PATH",
                   help="a Hub id or a folder (a bare name means sentence-transformers/NAME); repeat it to compare "
                        "models side by side, "
                        "each with its own prompts (default: the pinned all-MiniLM-L6-v2)")
    e.add_argument("--rerank-model", default=None, metavar="ID",
                   help="a cross-encoder folder or id (a bare name means cross-encoder/NAME) that rescores each "
                        "model's top documents; its row follows each model's")
    e.add_argument("--rerank-top-k", type=positive_int, default=100, metavar="K",
                   help="documents per query the cross-encoder rescores, at most 100 (default 100); metrics at "
                        "cutoffs above K count those K alone")
    e.add_argument("--batch-size", type=positive_int, default=32, help="texts (or pairs) per forward pass (default 32)")
    e.add_argument("--failures", type=positive_int, default=None, metavar="N",
                   help="also show, per row, the N queries whose first relevant document ranks worst")
    e.add_argument("--json", action="store_true",
                   help="one JSON object per row: model, reranker, the evaluator's metrics dict (and failures)")
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`tinyminilm evaluate`: one row of retrieval metrics per model (and per reranked model)."""
    from ..evaluation import load_beir
    from ..evaluation.report import check_top_k, failures, report_evaluator, rerank, retrieve

    queries, corpus, relevant_docs = load_beir(args.folder, args.split)  # every line checked before any model runs
    show = wants_progress(args)

    def evaluator():  # a fresh one per model: its score function is the model's own
        return report_evaluator(queries, corpus, relevant_docs, batch_size=args.batch_size,
                                truncate_dim=args.truncate_dim, show_progress_bar=show)

    first = evaluator()
    if args.rerank_model is not None:
        check_top_k(first, args.rerank_top_k, "--rerank-top-k")
    names = args.model or [None]
    models = [load_named(name) for name in names]  # all loaded first: a wrong name fails before any work
    for model in models:
        check_dims(model, args)
    cross = (load_cross_encoder(args.rerank_model, f"--rerank-model {args.rerank_model}")
             if args.rerank_model is not None else None)

    rows = []  # (model label, reranker label or None, evaluator, run)
    for i, (name, model) in enumerate(zip(names, models)):
        ev = first if i == 0 else evaluator()
        run = retrieve(ev, model)
        rows.append((_label(name), None, ev, run))
        if cross is not None:
            rows.append((_label(name), args.rerank_model, ev, rerank(ev, run, cross, args.rerank_top_k,
                                                                    args.batch_size, show)))

    if args.json:
        for model_label, reranker, ev, run in rows:
            record = {"model": model_label, "reranker": reranker,
                      "rerank_top_k": args.rerank_top_k if reranker else None, "metrics": run.metrics}
            if args.failures:
                record["failures"] = failures(ev, run, args.failures)
            print(json.dumps(record, ensure_ascii=False))
        return 0
    print(f"{args.folder} (split {args.split}): {len(first.queries_ids):,} queries with a relevant document "
          f"(of {len(queries):,}), {len(corpus):,} documents, "
          f"{sum(len(docs) for docs in relevant_docs.values()):,} relevant judgements")
    _print_table([(_row_label(m, r, args.rerank_top_k), ev, run) for m, r, ev, run in rows])
    if args.failures:
        for model_label, reranker, ev, run in rows:
            _print_failures(_row_label(model_label, reranker, args.rerank_top_k), failures(ev, run, args.failures),
                            args.failures)
    return 0




def _label(name: str | None) -> str:
    from ..hub import MODEL_ID

    return MODEL_ID if name is None else str(name)


def _row_label(model: str, reranker: str | None, top_k: int) -> str:
    return model if reranker is None else f"{model} + {reranker} (top {top_k})"


def _print_table(rows: list) -> None:
    """One line per row: its label, then TABLE_COLUMNS' values to 4 decimals."""
    from ..evaluation.report import TABLE_COLUMNS, table_values

    width = max(len("model"), *(len(label) for label, _, _ in rows))
    print("  ".join([f"{'model':<{width}}"] + [f"{header:>{max(len(header), 6)}}" for header, _ in TABLE_COLUMNS]))
    for label, ev, run in rows:
        values = [f"{value:>{max(len(header), 6)}.4f}" for (header, _), value in zip(TABLE_COLUMNS,
                                                                                    table_values(ev, run))]
        print("  ".join([f"{label:<{width}}"] + values))


def _print_failures(label: str, found: list[dict], n: int) -> None:
    """The worst queries of one row: the query, where its first relevant document ranks, that document, the top hit."""
    print(f"\nWorst queries of {label}, by the rank of their first relevant document (up to {n}):")
    if not found:
        print("  none: every query has a relevant document at rank 1")
        return
    for failure in found:
        rank = failure["rank"]
        where = f"rank {rank}" if rank is not None else f"not in the top {failure['depth']}"
        print(f"  [{failure['query_id']}] {_one_line(failure['query'])}")
        print(f"      first relevant document: {where}")
        for what, doc in (("relevant", failure["relevant"]), ("top hit ", failure["top_hit"])):
            score = " " * 7 if doc["score"] is None else f"{doc['score']:7.4f}"
            print(f"      {what} {score}  [{doc['corpus_id']}] {_one_line(doc['text'], TEXT_WIDTH)}")


def _one_line(text: str, width: int | None = None) -> str:
    """text on one line (runs of whitespace as one space), cut to `width` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[:width - 1] + "…"
