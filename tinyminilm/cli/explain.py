"""`tinyminilm explain`: one text's tokens, hidden-state norms and attention, printed; an SVG heatmap on request.
The work is tinyminilm.explain's (library code that returns data and strings); this module prints it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..explain import SVG_MAX_TOKENS, explain_text, format_explanation, render_svg, write_svg
from ..files import check_output
from .common import error, load_model, model_name_options, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `explain` on the subparsers of tinyminilm's command line."""
    p = sub.add_parser("explain", parents=[model_name_options()],
                       help="show tokens, hidden-state norms and attention for one text",
                       description="Run the model on one text and show what happens inside: the tokens and ids, "
                                   "each layer's shapes and hidden-state norms, and the most-attended token of "
                                   "every head. --svg also draws every head's attention as a heatmap.")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--svg", type=Path, default=None, metavar="FILE",
                   help="write an attention heatmap (layers × heads) to this SVG file")
    p.add_argument("--svg-max-tokens", type=positive_int, default=SVG_MAX_TOKENS, metavar="N",
                   help=f"longer texts show their first N tokens in the picture (default {SVG_MAX_TOKENS})")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """`tinyminilm explain`: print the report, and write the SVG when asked."""
    if args.svg is not None:
        check_output(args.svg, "--svg")  # fail before the model runs: a missing folder, a file in the way

    model = load_model(args)
    exp = explain_text(model, args.text)
    print(format_explanation(exp), end="")
    if args.svg is not None:
        try:
            write_svg(args.svg, render_svg(exp, args.svg_max_tokens))
        except OSError as e:
            return error(f"--svg {args.svg}: cannot write ({e.strerror or e}); pass a path in a writable folder")
        shown = min(len(exp.tokens), args.svg_max_tokens)
        crop = f", first {shown} of {len(exp.tokens)} tokens shown" if shown < len(exp.tokens) else ""
        print(f"\nwrote {args.svg}: attention of {exp.n_layers} layers × {exp.n_heads} heads over {shown} tokens"
              f"{crop}; open it in a browser")
    return 0
