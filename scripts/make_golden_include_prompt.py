"""Write tests/golden/include_prompt.npz: what sentence-transformers 6.2 computes with a Pooling module that leaves
the prompt out (1_Pooling/config.json "include_prompt": false), on the model fixtures of tests/model_fixtures.py.

Run it in the reference environment (torch CPU, sentence-transformers 6.2, transformers 5):

    /work/refvenv/bin/python scripts/make_golden_include_prompt.py

For each case below it builds the shape's st6 folder exactly as the tests do (model_fixtures.build_model), sets
include_prompt false in 1_Pooling/config.json (model_fixtures.edit_json), loads the folder with
sentence-transformers and records, on model_fixtures.golden_texts(shape):
  <case>/<output>         float32 [n, 384]: encode_query, encode_document, or encode with the prompt given
  <case>/<output>_prompt_length   int64 []: the leading tokens its Pooling skipped (Transformer._get_prompt_length)
and the library versions in tests/golden/include_prompt_versions.json. The cases cover mean pooling (e5-small's
"query: " / "passage: "), CLS pooling, which then takes the first token after the prompt (bge-small's query prompt),
and a SentencePiece Unigram tokenizer whose template ends in </s> (multilingual-minilm with prompt="query: ").
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
PINNED = Path(os.environ.get("TINYMINILM_HOME", "/work/models")) / "all-MiniLM-L6-v2"
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every folder here is local

import model_fixtures  # noqa: E402  (tests/model_fixtures.py)
from make_golden import versions as reference_versions  # noqa: E402

# case -> {output name: (encode method, its prompt argument or None for the model's own)}
CASES = {
    "e5-small": {"encode_query": ("encode_query", None), "encode_document": ("encode_document", None)},
    "bge-small": {"encode_query": ("encode_query", None)},
    "multilingual-minilm": {"encode_prompt": ("encode", "query: ")},
}


def main() -> None:
    from sentence_transformers import SentenceTransformer

    golden: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape, outputs in CASES.items():
            folder = model_fixtures.build_model(shape, Path(tmp), "st6", PINNED)
            model_fixtures.edit_json(folder / "1_Pooling" / "config.json", include_prompt=False)
            st = SentenceTransformer(str(folder), device="cpu")
            assert st[1].include_prompt is False
            texts = model_fixtures.golden_texts(shape)
            for name, (method, prompt) in outputs.items():
                kwargs = {} if prompt is None else {"prompt": prompt}
                emb = getattr(st, method)(texts, batch_size=8, convert_to_numpy=True, **kwargs).astype(np.float32)
                used = prompt if prompt is not None else st.prompts[{"encode_query": "query",
                                                                      "encode_document": "document"}[method]]
                assert used, (shape, name)  # a prompt to leave out
                length = st[0]._get_prompt_length(used)
                with_prompt = st.encode([used + t for t in texts], batch_size=8, convert_to_numpy=True)
                assert np.abs(with_prompt - emb).max() > 1e-3, (shape, name)  # the prompt's tokens were skipped
                golden[f"{shape}/{name}"] = emb
                golden[f"{shape}/{name}_prompt_length"] = np.int64(length)
                print(f"{shape} {name}: prompt {used!r} = {length} leading tokens skipped; {len(texts)} texts")
    np.savez_compressed(GOLDEN / "include_prompt.npz", **golden)
    info = {**reference_versions(), "model": "random weights: tests/tiny_bert.make_weights(seed, config.json), seeds "
            "in tests/model_fixtures.SEEDS", "made_by": "scripts/make_golden_include_prompt.py",
            "date": datetime.date.today().isoformat(), "cases": {k: sorted(v) for k, v in CASES.items()}}
    (GOLDEN / "include_prompt_versions.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    for f in ("include_prompt.npz", "include_prompt_versions.json"):
        print(f"wrote {GOLDEN / f} ({(GOLDEN / f).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
