"""Sentence-transformers models of the real Hub shapes with random weights, and the Hugging Face cache they sit in.

Five shapes (tests/fixtures/models/<shape>/), each in two file formats:
  st6/  what sentence-transformers 6.2 saves: `1_Pooling/config.json` with "pooling_mode", no max_seq_length in
        sentence_bert_config.json (the limit is tokenizer_config.json's model_max_length), module paths such as
        `sentence_transformers.base.modules.transformer.Transformer`;
  old/  the same model as sentence-transformers 2.x-5.x wrote it: pooling_mode_* flags, max_seq_length and
        do_lower_case in sentence_bert_config.json, `sentence_transformers.models.*` module paths.
Only their small JSON files are committed, written by scripts/make_golden_models.py; `build_model` completes a
folder with the tokenizer files and with weights made from the shape's seed by tiny_bert.make_weights.
tests/golden/models.npz holds what sentence-transformers 6.2 computes with them (see `golden`).

shape                real model it copies                          pooling  Normalize  limit  tokenizer
minilm-l12           all-MiniLM-L12-v2                             mean     yes        128    pinned WordPiece
bge-small            BAAI/bge-small-en-v1.5 (query prompt)         CLS      yes        512    pinned WordPiece
e5-small             intfloat/e5-small-v2 (query/passage prompts)  mean     no         512    pinned WordPiece
gte-small            thenlper/gte-small                            mean     no         512    pinned WordPiece
multilingual-minilm  paraphrase-multilingual-MiniLM-L12-v2         mean     no         128    our Unigram (8001)

The WordPiece shapes use the pinned all-MiniLM-L6-v2's tokenizer files (the `model_dir` fixture), which are the
same uncased vocabulary these models ship. The Unigram shape's vocabulary is ours (trained on scripts/data/, see
scripts/make_golden_models.py), XLM-R-style: <s>=0, <pad>=1, </s>=2, <unk>=3, "<s> $A </s>", no token_type_ids.
Traps the real folders hold, kept on purpose: the old/ limit (sentence_bert_config.json) differs from the old
tokenizer_config.json's model_max_length (512) and from the pinned tokenizer.json's truncation (128); st6/
tokenizer_config.json has a stale "max_length": 128 beside the model_max_length that counts; bge-small's old/ says
do_lower_case: true (sentence-transformers then lower-cases only if the tokenizer does not already, so "[MASK]" in a
text stays a special token); old/ of multilingual-minilm has no config_sentence_transformers.json.

Only numpy, safetensors and the standard library are imported, so the tests need no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from tiny_bert import make_weights

FIXTURES = Path(__file__).parent / "fixtures" / "models"
GOLDEN = Path(__file__).parent / "golden"

# One seed per shape for tiny_bert.make_weights: the same seed gives the same weights on every machine.
SEEDS = {"minilm-l12": 1201, "bge-small": 1202, "e5-small": 1203, "gte-small": 1204, "multilingual-minilm": 1205}
SHAPES = tuple(SEEDS)
FORMATS = ("st6", "old")

# Tokenizer files taken from the pinned all-MiniLM-L6-v2 folder for the WordPiece shapes, per format. What
# sentence-transformers 6.2 saves has no vocab.txt nor special_tokens_map.json, and a tokenizer_config.json of its
# own (committed under st6/, it carries the model's max_seq_length as model_max_length).
PINNED_FILES = {"st6": ("tokenizer.json",),
                "old": ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")}
UNIGRAM_SHAPES = ("multilingual-minilm",)  # these read FIXTURES/<shape>/tokenizer.json instead

# Files the Hub stores through Git LFS, named in the cache by their SHA-256 (the rest by their git blob SHA-1).
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".h5", ".msgpack")


def build_model(shape: str, tmp_path: Path, fmt: str = "st6", model_dir: Path | None = None) -> Path:
    """A complete sentence-transformers folder of `shape` in format `fmt` ("st6" or "old"), under tmp_path.

    The committed configs of FIXTURES/<shape>/<fmt>/, the tokenizer files (from `model_dir`, the pinned
    all-MiniLM-L6-v2 folder, for the WordPiece shapes), and model.safetensors: float32 BertModel tensors from
    tiny_bert.make_weights(SEEDS[shape], config.json). Returns the folder, tmp_path / f"{shape}-{fmt}".
    """
    if shape not in SEEDS:
        raise ValueError(f"shape {shape!r} is not one of {SHAPES}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r} is not one of {FORMATS}")
    folder = Path(tmp_path) / f"{shape}-{fmt}"
    shutil.copytree(FIXTURES / shape / fmt, folder)
    if shape in UNIGRAM_SHAPES:
        shutil.copyfile(FIXTURES / shape / "tokenizer.json", folder / "tokenizer.json")
    else:
        if model_dir is None:
            raise ValueError(f"shape {shape!r} takes its tokenizer files from model_dir (the pinned folder); got None")
        for name in PINNED_FILES[fmt]:
            if not (folder / name).exists():  # a committed file of the format wins over the pinned one
                shutil.copyfile(Path(model_dir) / name, folder / name)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    from safetensors.numpy import save_file

    save_file(make_weights(SEEDS[shape], config=config), str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder


def edit_json(path: Path, **fields) -> dict:
    """Set `fields` in the JSON object of `path` (a None value removes the field); returns the new object. For
    variants of a built folder, such as a Pooling module with include_prompt false."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return data


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes in name order: which weights a folder holds."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(f"{name} {t.dtype.str} {t.shape}\n".encode())
        h.update(t.tobytes())
    return h.hexdigest()


def git_blob_id(data: bytes) -> str:
    """The git blob SHA-1 of `data`: the Hub's ETag (and `oid`) of a file that is not stored through LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _blob_name(path: Path) -> str:
    """The name the Hugging Face cache gives a file's blob: its ETag, the SHA-256 of an LFS file's content or
    the git blob SHA-1 of any other file."""
    data = path.read_bytes()
    if path.name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return git_blob_id(data)


def hf_cache(root: Path, repo_id: str, folder: Path, revision: str | None = None, ref: str | None = "main") -> Path:
    """Lay `folder`'s files out in `root` as huggingface_hub lays out its cache, and return the snapshot folder.

    root/models--<org>--<name>/blobs/<etag>             the content (hard-linked from folder where possible)
    root/models--<org>--<name>/snapshots/<revision>/<p> a relative symlink into blobs/ for every file p of folder
    root/models--<org>--<name>/refs/<ref>               the revision, without a newline (no file if ref is None)
    revision: a 40-hex commit hash; default: a SHA-1 over the folder's file names and blobs, so that different
    folders get different commits. Point HF_HUB_CACHE (or HF_HOME=<parent> with root=<parent>/hub) at root.
    """
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    blobs = {p: _blob_name(p) for p in files}
    if revision is None:
        listing = "".join(f"{p.relative_to(folder).as_posix()} {blobs[p]}\n" for p in files)
        revision = hashlib.sha1(listing.encode()).hexdigest()
    if len(revision) != 40 or any(c not in "0123456789abcdef" for c in revision):
        raise ValueError(f"revision must be a 40-hex commit hash, got {revision!r}")
    repo = Path(root) / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / revision
    for p in files:
        blob = repo / "blobs" / blobs[p]
        if not blob.exists():
            try:
                os.link(p, blob)
            except OSError:  # another file system, or no hard links: copy
                shutil.copyfile(p, blob)
        link = snapshot / p.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return snapshot


def golden_texts(shape: str) -> list[str]:
    """The texts of tests/golden/models.npz for `shape`: the common ones, then one text of exactly the shape's
    max_seq_length tokens and one of a token more (both counted with the special tokens)."""
    texts = json.loads((GOLDEN / "models_texts.json").read_text(encoding="utf-8"))
    return texts["common"] + [texts["at_limit"][shape], texts["past_limit_by_one"][shape]]


def golden(shape: str) -> dict[str, np.ndarray]:
    """sentence-transformers 6.2's outputs for `shape` on golden_texts(shape), by name without the shape prefix:
    encode / encode_query / encode_document float32 [n_texts, 384]; ids_flat int32 + ids_offsets int64 (the ids of
    text i are ids_flat[ids_offsets[i]:ids_offsets[i + 1]]), likewise query_ids_* and document_ids_* with the
    prompt prepended; max_seq_length int64 []; weights_sha256 str [], weights_digest of the weights they came
    from. conftest.golden_ids(golden(shape), i) reads the plain ids."""
    with np.load(GOLDEN / "models.npz") as z:
        prefix = shape + "/"
        return {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}

