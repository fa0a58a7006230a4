"""`tinyminilm similarity`: the cosine similarity of two texts."""

from __future__ import annotations

import argparse

import numpy as np

from .common import load_model, model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `similarity` on the subparsers of tinyminilm's command line."""
    m = sub.add_parser("similarity", parents=[model_options()], help="the cosine similarity of two texts")
    m.add_argument("text_a", metavar="TEXT_A")
    m.add_argument("text_b", metavar="TEXT_B")
    m.set_defaults(func=cmd_similarity)


def cmd_similarity(args: argparse.Namespace) -> int:
    """`tinyminilm similarity`: the cosine similarity of two texts."""
    from ..util import cos_sim

    model = load_model(args)
    emb = model.encode([args.text_a, args.text_b], batch_size=2)  # [2, dim]
    print(f"{float(np.asarray(cos_sim(emb[:1], emb[1:]))[0, 0]):.6f}")
    return 0
