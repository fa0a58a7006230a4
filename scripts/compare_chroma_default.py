"""How Chroma's default embedding function's vectors compare with tinyminilm's (= sentence-transformers').

Chroma's default (`chromadb.utils.embedding_functions.ONNXMiniLM_L6_V2`) runs all-MiniLM-L6-v2 through onnxruntime
from an ONNX file it downloads on first use into ~/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/. This script
runs that class's own code (its tokenizer settings, padding, pooling and normalization) on a folder of those files
and compares with `tinyminilm.load().encode` on the same texts. It never downloads: the folder must exist.

    python scripts/compare_chroma_default.py                        # Chroma's cached files, where Chroma put them
    python scripts/compare_chroma_default.py --onnx-dir DIR         # any folder of the same six files
    python scripts/compare_chroma_default.py --export DIR [--weights MODEL_DIR]   # only make DIR/model.onnx

--export is for hosts that cannot reach Chroma's bucket: it exports transformers' BertModel (eager attention, the
last hidden state) to ONNX as chroma-core/onnx-embedding's create_onnx.py does through optimum, so the comparison
then measures Chroma's pipeline with our export in place of its file. It needs torch, transformers and onnx
(`pip install -e '.[reference]' onnx`), and exits after writing the file; run the comparison, which needs the
chroma extra, in an environment of its own (with --onnx-dir DIR). The five tokenizer/config files must already be in DIR (Chroma's archive
holds the model's own tokenizer.json, config.json, vocab.txt, special_tokens_map.json, tokenizer_config.json).

It also prints what truncating at 128 tokens (the limit written in this model's tokenizer.json, which Chroma and
sentence-transformers both override to 256) would change, as a reference for pipelines that keep that limit.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FILES = ["config.json", "model.onnx", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt"]


def export_onnx(model_dir: Path, out: Path) -> None:
    """Write out/model.onnx: BertModel(input_ids, attention_mask, token_type_ids) -> last_hidden_state."""
    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(LastHiddenState(), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                          str(out / "model.onnx"), dynamo=False, opset_version=14, input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]})


def texts() -> list[str]:
    golden = [t["text"] for t in json.loads((ROOT / "tests/golden/texts.json").read_text(encoding="utf-8"))]
    lines = (ROOT / "scripts/data/stdlib_docstrings.txt").read_text(encoding="utf-8").splitlines()
    return golden + lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx-dir", type=Path, help="folder of Chroma's six files (default: Chroma's cache)")
    parser.add_argument("--export", type=Path, metavar="DIR", help="only export the weights to DIR/model.onnx")
    parser.add_argument("--weights", type=Path, help="with --export: the model folder (default: tinyminilm's)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N texts (0: all)")
    parser.add_argument("--truncation-only", action="store_true", help="only the 128-vs-256 row (no Chroma)")
    args = parser.parse_args()
    if args.export:
        if args.weights is None:
            import tinyminilm.hub

            args.weights = tinyminilm.hub.ensure_model()
        args.export.mkdir(parents=True, exist_ok=True)
        export_onnx(args.weights, args.export)
        print(f"wrote {args.export / 'model.onnx'}")
        return

    import tinyminilm

    model = tinyminilm.load()
    corpus = texts()[: args.limit or None]
    ours = model.encode(corpus)
    print(f"{cpu_name()}; numpy {np.__version__}; {len(corpus)} texts (the 370 golden texts, then the 4,000 stdlib "
          "docstrings of scripts/data)")
    chroma = None if args.truncation_only else chroma_default(args.onnx_dir, corpus)
    print("| compared | max abs diff per text: median / max | cosine, min | top-10 ids of 370 queries |")
    print("|---|---|---|---|")
    if chroma is not None:
        print(f"| Chroma's default pipeline vs tinyminilm | {row(chroma, ours, corpus)} |")

    model.max_seq_length = 128
    short = model.encode(corpus)
    model.max_seq_length = 256
    longer = np.array([len(ids) > 128 for ids in model.token_ids(corpus)])
    rest = np.abs(short[~longer] - ours[~longer]).max() if (~longer).any() else 0.0
    print(f"| tinyminilm truncating at 128 vs at 256 | {row(short, ours, corpus)} |")
    print(f"\n{longer.sum()} of {len(corpus)} texts ({longer.mean():.1%}) exceed 128 tokens; the vectors of the others "
          f"differ by at most {rest:.1e} (float rounding of other batches)")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def chroma_default(onnx_dir: Path | None, corpus: list[str]) -> np.ndarray:
    """Chroma's ONNXMiniLM_L6_V2, run as Chroma runs it, on the files in onnx_dir (default: Chroma's cache)."""
    import onnxruntime
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    folder = onnx_dir or ONNXMiniLM_L6_V2.DOWNLOAD_PATH / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise SystemExit(f"{folder}: missing {', '.join(missing)}; this script never downloads (see its docstring)")

    class ChromaDefaultHere(ONNXMiniLM_L6_V2):
        DOWNLOAD_PATH = folder.parent  # Chroma reads DOWNLOAD_PATH / "onnx" / ...
        EXTRACTED_FOLDER_NAME = folder.name

        def _download_model_if_not_exists(self) -> None:  # the files are checked above; never fetch
            return

    print(f"Chroma's pipeline on {folder} (onnxruntime {onnxruntime.__version__})")
    return np.stack(ChromaDefaultHere(preferred_providers=["CPUExecutionProvider"])(corpus))


def row(a: np.ndarray, b: np.ndarray, corpus: list[str]) -> str:
    """Table cells comparing two sets of vectors of the same texts; the first 370 texts (golden) are the queries."""
    from tinyminilm import util

    diff = np.abs(a - b).max(axis=1)
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    n = min(370, len(corpus))
    hits_a = util.semantic_search(a[:n], a, top_k=10)
    hits_b = util.semantic_search(b[:n], b, top_k=10)
    same = sum([h["corpus_id"] for h in x] == [h["corpus_id"] for h in y] for x, y in zip(hits_a, hits_b))
    return f"{np.median(diff):.1e} / {diff.max():.1e} | {cos.min():.7f} | {same}/{n} identical"


if __name__ == "__main__":
    main()
