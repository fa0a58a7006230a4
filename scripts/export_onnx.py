"""Export the official all-MiniLM-L6-v2 weights to ONNX (fp32), for scripts/bench.py's onnxruntime column.

    python scripts/export_onnx.py [--model FOLDER] [--out weights/onnx/model.onnx]

Runs in the reference environment (the `reference` extra: torch, transformers, onnx). The Hugging Face BertModel
is loaded from the local model folder (tinyminilm.hub.ensure_model(), no hub access) and exported with
torch.onnx.export: inputs input_ids / attention_mask / token_type_ids [batch, sequence] int64 with both axes
dynamic, output last_hidden_state [batch, sequence, 384] float32. Pooling stays outside the graph, as
sentence-transformers' ONNX backend has it. The export is then run by onnxruntime on a few texts of different
lengths (padded in one batch) and compared with torch; the max difference is printed.
The .onnx file goes under weights/ (git-ignored): it is 90 MB and is never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "weights" / "onnx" / "model.onnx"
CHECK_TEXTS = ["How do I reset my password?",
               "The quick brown fox jumps over the lazy dog, again and again, until the dog finally gets up.",
               "a",
               "Return the number of items in a container; for sequences this is the length, for mappings the "
               "number of keys. Objects that define __len__ are sized. " * 6]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="the sentence-transformers model folder (default: tinyminilm.hub.ensure_model())")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"where to write the .onnx file (default {DEFAULT_OUT})")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    from tinyminilm import hub

    folder = Path(args.model) if args.model else hub.ensure_model()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False,
                                      attn_implementation="eager").eval()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(CHECK_TEXTS)
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
             "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
    names = list(feeds)
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}

    class Wrapped(torch.nn.Module):  # positional inputs in a fixed order, one tensor out
        def __init__(self, bert: BertModel) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    wrapped = Wrapped(model).eval()
    example = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        torch.onnx.export(wrapped, example, str(out), input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=dyn, opset_version=args.opset, do_constant_folding=True, dynamo=False)
        ref = wrapped(*example).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["last_hidden_state"], feeds)[0]
    real = feeds["attention_mask"].astype(bool)  # padding positions are not compared: nobody reads them
    diff = float(np.abs(got - ref)[real].max())
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB), opset {args.opset}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"max |onnxruntime - torch| over the real tokens of {len(CHECK_TEXTS)} texts "
          f"(lengths {[int(m.sum()) for m in feeds['attention_mask']]}): {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"the export differs from torch by {diff:.2e} (more than 1e-4): do not use it")


if __name__ == "__main__":
    main()
