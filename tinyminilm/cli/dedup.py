"""`tinyminilm dedup`: groups of near-duplicate texts in a file (community detection), one JSON object per line."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..errors import InputError
from ..files import records, scan
from .common import (check_dims, encode_chunks, encoding_options, load_model, model_options, progress,
                     reading_options, text_input, texts_at)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `dedup` on the subparsers of tinyminilm's command line."""
    d = sub.add_parser("dedup", parents=[model_options(), encoding_options(), reading_options()],
                       help="find groups of near-duplicate texts",
                       description="Print groups of near-duplicates (community detection: every member is at least "
                                   "--threshold similar to the group's center), one JSON object per line.")
    d.add_argument("--input", "-i", required=True, metavar="FILE",
                   help="the texts (.txt/.jsonl/.csv/.tsv, - for stdin)")
    d.add_argument("--threshold", "-t", type=float, default=0.9, help="cosine similarity (default 0.9)")
    d.set_defaults(func=cmd_dedup)


def cmd_dedup(args: argparse.Namespace) -> int:
    """`tinyminilm dedup`: groups of near-duplicate texts (community detection, min size 2), as JSON lines."""
    from ..util import community_detection

    if not -1.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold {args.threshold}: a cosine similarity, from -1 to 1 (e.g. 0.9)")
    with text_input(args.input, args) as src:
        n, _ = scan(src)
        model = load_model(args)
        check_dims(model, args)
        bar = progress(args, n, "Embedding")
        try:
            emb = np.concatenate([e for _, e in encode_chunks(
                model, records(src), batch_size=args.batch_size, truncate_dim=args.truncate_dim, bar=bar)])
        finally:
            if bar is not None:
                bar.close()
        groups = community_detection(emb, threshold=args.threshold, min_community_size=2)
        texts = texts_at(src, (i for g in groups for i in g))
    for k, group in enumerate(groups):
        members = sorted(int(i) for i in group)
        print(json.dumps({"group": k, "size": len(members), "center": int(group[0]), "indices": members,
                          "lines": [texts[i][0] for i in members], "texts": [texts[i][1] for i in members]},
                         ensure_ascii=False))
    return 0
