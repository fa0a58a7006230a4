"""Export the official all-MiniLM-L6-v2 weights to ONNX (fp32), for scripts/bench.py's onnxruntime column.

    python scripts/export_onnx.py [--model FOLDER] [--out weights/onnx/model.onnx]
    python scripts/export_onnx.py --cross [--model FOLDER] [--out weights/onnx/cross.onnx]

Runs in the reference environment (the `reference` extra: torch, transformers, onnx). The Hugging Face BertModel
is loaded from the local model folder (tinyminilm.hub.ensure_model(), no hub access) and exported with
torch.onnx.export: inputs input_ids / attention_mask / token_type_ids [batch, sequence] int64 with both axes
dynamic, output last_hidden_state [batch, sequence, 384] float32. Pooling stays outside the graph, as
sentence-transformers' ONNX backend has it. The export is then run by onnxruntime on a few texts of different
lengths (padded in one batch) and compared with torch; the max difference is printed.
The .onnx file goes under weights/ (git-ignored): it is 90 MB and is never committed.

--cross: the cross-encoder for scripts/bench_rerank.py instead. AutoModelForSequenceClassification from FOLDER
(default: the bench's random-weight folder of ms-marco-MiniLM-L6-v2's shape, weights/bench-cross/, built by
bench_rerank.bench_folder if it is not there yet), the same three inputs, output logits [batch, labels] float32 —
the whole model, pooler and classifier included, no activation (ms-marco-MiniLM-L6-v2 scores are raw logits). The
check runs query–document pairs tokenized as the reference does ([CLS] q [SEP] d [SEP], token types 0 then 1,
"longest_first" truncation at max_position_embeddings, 512), one of them cut, and compares every logit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "weights" / "onnx" / "model.onnx"
DEFAULT_CROSS_OUT = ROOT / "weights" / "onnx" / "cross.onnx"
CHECK_TEXTS = ["How do I reset my password?",
               "The quick brown fox jumps over the lazy dog, again and again, until the dog finally gets up.",
               "a",
               "Return the number of items in a container; for sequences this is the length, for mappings the "
               "number of keys. Objects that define __len__ are sized. " * 6]
CHECK_PAIRS = [(CHECK_TEXTS[0], CHECK_TEXTS[1]), ("a", ""), (CHECK_TEXTS[1], CHECK_TEXTS[3]),
               (CHECK_TEXTS[3], CHECK_TEXTS[3] * 2)]  # the last is cut at 512 tokens, both sides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="the sentence-transformers model folder (default: tinyminilm.hub.ensure_model())")
    ap.add_argument("--cross", action="store_true", help="export the cross-encoder (logits) for bench_rerank.py; "
                    "--model defaults to its random-weight folder weights/bench-cross/, built if missing")
    ap.add_argument("--out", help=f"where to write the .onnx file (default {DEFAULT_OUT}, "
                    f"with --cross {DEFAULT_CROSS_OUT})")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification, BertModel

    from tinyminilm import hub

    if args.cross:
        from bench_rerank import bench_folder  # scripts/ is on the path: this script's own folder

        folder = Path(args.model) if args.model else bench_folder()
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True,
                                                                   attn_implementation="eager").eval()
        output, inputs, max_length = "logits", CHECK_PAIRS, model.config.max_position_embeddings
    else:
        folder = Path(args.model) if args.model else hub.ensure_model()
        model = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False,
                                          attn_implementation="eager").eval()
        output, inputs, max_length = "last_hidden_state", CHECK_TEXTS, 256
    out = Path(args.out or (DEFAULT_CROSS_OUT if args.cross else DEFAULT_OUT))
    out.parent.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length, strategy="longest_first")
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(inputs)
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
             "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
    names = list(feeds)
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    dyn[output] = {0: "batch"} if args.cross else {0: "batch", 1: "sequence"}

    class Wrapped(torch.nn.Module):  # positional inputs in a fixed order, one tensor out
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids), output)

    wrapped = Wrapped(model).eval()
    example = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        torch.onnx.export(wrapped, example, str(out), input_names=names, output_names=[output],
                          dynamic_axes=dyn, opset_version=args.opset, do_constant_folding=True, dynamo=False)
        ref = wrapped(*example).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run([output], feeds)[0]
    # a logit per pair is compared; of hidden states only the real tokens' (nobody reads the padding positions)
    diff = float(np.abs(got - ref).max() if args.cross else np.abs(got - ref)[feeds["attention_mask"] == 1].max())
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB), opset {args.opset}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"max |onnxruntime - torch| of {output} over {len(inputs)} {'pairs' if args.cross else 'texts'} "
          f"(lengths {[int(m.sum()) for m in feeds['attention_mask']]}): {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"the export differs from torch by {diff:.2e} (more than 1e-4): do not use it")


if __name__ == "__main__":
    main()
