"""model.safetensors -> the nested dict of float32 arrays that `tinyminilm.model` computes with.

This is the only file that knows checkpoint key strings. It checks, before any number is used, that every
expected tensor is there with the shape config.json implies, that nothing unexpected is there, that every
tensor is float32 and finite. Torch's `nn.Linear` stores its weight as [out, in]; the model gets its transpose,
[in, out], so that it reads `x @ w + b` — a view, not a copy: BLAS multiplies by a transposed matrix as fast.
Query, key and value are fused into one [H, 3H] matrix (a copy) so that attention starts with one matmul.

The tensors are memory-mapped from the file, not read into memory: loading is fast, the pages are shared by every
process that maps the file, and rows of the word-embedding table that no text uses are never read. (The file must
therefore not be truncated in place while a model uses it; replacing it by rename is safe.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .config import BertConfig
from .errors import WeightsError

# Present in the checkpoint, known, and not used: by a sentence encoder (the first three), by a cross-encoder (the
# last: BertForSequenceClassification's keys are BertModel's under "bert.").
_UNUSED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias", "bert.embeddings.position_ids")


def expected_shapes(cfg: BertConfig, num_labels: int | None = None) -> dict[str, tuple[int, ...]]:
    """Checkpoint key -> shape, for every tensor the forward pass reads.

    num_labels: those of a BertForSequenceClassification checkpoint instead (a cross-encoder): the same BERT keys
    under "bert.", plus BERT's pooler and the classifier [num_labels, H].
    """
    H, I = cfg.hidden_size, cfg.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, H),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name, (n_out, n_in) in {
            "attention.self.query": (H, H), "attention.self.key": (H, H), "attention.self.value": (H, H),
            "attention.output.dense": (H, H), "intermediate.dense": (I, H), "output.dense": (H, I),
        }.items():
            shapes[p + name + ".weight"] = (n_out, n_in)
            shapes[p + name + ".bias"] = (n_out,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = (H,)
            shapes[p + ln + ".bias"] = (H,)
    if num_labels is None:
        return shapes
    return {**{"bert." + k: shape for k, shape in shapes.items()},
            "bert.pooler.dense.weight": (H, H), "bert.pooler.dense.bias": (H,),
            "classifier.weight": (num_labels, H), "classifier.bias": (num_labels,)}


_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header


def _unreadable(path: Path, problem: str) -> WeightsError:
    return WeightsError(f"{path}: not a readable safetensors file ({problem}); it may be truncated or corrupt — "
                        "delete it and run `tinyminilm download`")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen = [k for k, _ in pairs]
    dup = next((k for k in seen if seen.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"the header names tensor {dup!r} twice")
    return dict(pairs)


def check_header(path: Path) -> tuple[dict, int]:
    """Check a safetensors file's layout before the library maps it: header length, JSON, names, byte ranges.

    A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
    {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the tensor bytes, the
    offsets counting from the end of the header. The safetensors library checks most of this itself; this adds
    what it lets through (a tensor named twice: JSON keeps the last), and says plainly what is wrong.
    Returns the header and the byte position where tensor data starts (8 + N).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _unreadable(path, f"the file is {size} bytes, too short to hold the 8-byte header length")
        n = int.from_bytes(prefix, "little")
        if n > _MAX_HEADER:
            raise _unreadable(path, f"its header length field says {n} bytes, more than the {_MAX_HEADER} a "
                                    "safetensors header may have")
        if n > size - 8:
            raise _unreadable(path, f"its header length field says {n} bytes, but only {size - 8} bytes follow")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise _unreadable(path, "its header is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise _unreadable(path, f"its header is not valid JSON: {e.msg} at byte {e.pos}") from None
    except ValueError as e:  # a duplicate name
        raise _unreadable(path, str(e)) from None
    if not isinstance(header, dict):
        raise _unreadable(path, "its header is not a JSON object")
    data_size = size - 8 - n
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _unreadable(path, f"tensor {name!r} has no valid data_offsets [begin, end] in the header")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise _unreadable(path, f"tensor {name!r} has data_offsets {offsets}, not 0 <= begin <= end")
        if end > data_size:
            raise _unreadable(path, f"tensor {name!r} ends at byte {end} of the data, but the file holds only "
                                    f"{data_size} bytes of tensor data: it is truncated")
        ranges.append((begin, end, name))
    ranges.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(ranges, ranges[1:]):
        if b1 < e0:
            raise _unreadable(path, f"tensors {n0!r} (bytes {b0}-{e0}) and {n1!r} (bytes {b1}-{e1}) overlap")
    return header, 8 + n


def _map_tensors(path: Path, header: dict, data_start: int, shapes: dict[str, tuple[int, ...]]) -> dict:
    """Read-only float32 views into a memory map of the file, one per tensor (a copy where misaligned)."""
    mm = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)  # a plain array over the map
    out = {}
    for key, shape in shapes.items():
        begin, end = header[key]["data_offsets"]
        raw = mm[data_start + begin:data_start + end]
        t = raw.view(np.float32).reshape(shape)
        out[key] = t if t.flags.aligned else np.array(t)
    return out


def _check_finite(path: Path, header: dict, data_start: int, keys: list[str]) -> None:
    """Raise WeightsError naming the first tensor holding NaN or Inf.

    Reads through the file in blocks rather than through the map, so checking does not make every page of the
    map resident: only the pages the model computes with ever count in this process's memory.
    """
    block = 1 << 22  # floats
    with open(path, "rb") as f:
        for key in keys:
            begin, end = header[key]["data_offsets"]
            f.seek(data_start + begin)
            left = (end - begin) // 4
            while left:
                chunk = np.fromfile(f, dtype=np.float32, count=min(block, left))
                if not np.isfinite(chunk).all():
                    raise WeightsError(f"{path}: tensor {key} contains NaN or Inf; the file is corrupt — delete it "
                                       "and run `tinyminilm download`")
                left -= chunk.size


def read_tensors(path: Path, cfg: BertConfig, num_labels: int | None = None) -> dict[str, np.ndarray]:
    """Read and check every tensor the model needs from a safetensors file; return them by checkpoint key.

    num_labels: read a BertForSequenceClassification checkpoint with that many labels (see expected_shapes).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found; run `tinyminilm download` or pass the model folder")
    expected = expected_shapes(cfg, num_labels)
    try:
        header, data_start = check_header(path)  # raises WeightsError; an OSError becomes one below
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            missing = sorted(set(expected) - keys)
            unexpected = sorted(k for k in keys - set(expected) if k not in _UNUSED)
            if missing:
                raise WeightsError(f"{path}: missing tensor(s) {', '.join(missing[:5])}"
                                   f"{' …' if len(missing) > 5 else ''}; is this a BERT checkpoint matching "
                                   "config.json?")
            if unexpected:
                raise WeightsError(f"{path}: unexpected tensor(s) {', '.join(unexpected[:5])}"
                                   f"{' …' if len(unexpected) > 5 else ''}; config.json does not describe them")
            for key, shape in expected.items():  # check shapes and dtypes from the header, before reading data
                s = f.get_slice(key)
                if tuple(s.get_shape()) != shape:
                    raise WeightsError(f"{path}: tensor {key} has shape {tuple(s.get_shape())}, config.json "
                                       f"implies {shape}")
                if s.get_dtype() != "F32":
                    raise WeightsError(f"{path}: tensor {key} has dtype {s.get_dtype()}, expected F32 (float32)")
        _check_finite(path, header, data_start, list(expected))
        tensors = _map_tensors(path, header, data_start, expected)
    except SafetensorError as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e}); it may be truncated or corrupt — "
                           "delete it and run `tinyminilm download`") from None
    except (OSError, ValueError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{path}: cannot be read ({e}); delete it and run `tinyminilm download`") from None
    return tensors


def to_params(t: dict[str, np.ndarray], cfg: BertConfig) -> dict:
    """Checkpoint keys -> the short names of model.py. The one key map of the package.

    A BertForSequenceClassification checkpoint (keys "bert.*" and "classifier.*") also gives the cross-encoder's
    head: "pooler" ([H, H]) and "classifier" ([H, num_labels]).
    """
    classification = "classifier.weight" in t
    if classification:  # BertModel's keys under "bert."
        t = {k.removeprefix("bert."): v for k, v in t.items()}

    def dense(prefix: str) -> dict:  # torch Linear [out, in] -> ours [in, out], a transposed view
        return {"w": t[prefix + ".weight"].T, "b": t[prefix + ".bias"]}

    def ln(prefix: str) -> dict:
        return {"g": t[prefix + ".weight"], "b": t[prefix + ".bias"]}

    layers = []
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(p + "attention.self." + n) for n in ("query", "key", "value"))
        layers.append({
            "qkv": {"w": np.concatenate([q["w"], k["w"], v["w"]], axis=1),  # [H, 3H]
                    "b": np.concatenate([q["b"], k["b"], v["b"]])},  # [3H]
            "attn_out": dense(p + "attention.output.dense"),  # [H, H]
            "ln_attn": ln(p + "attention.output.LayerNorm"),
            "ffn_in": dense(p + "intermediate.dense"),  # [H, I]
            "ffn_out": dense(p + "output.dense"),  # [I, H]
            "ln_ffn": ln(p + "output.LayerNorm"),
        })
    params = {
        "word_embeddings": t["embeddings.word_embeddings.weight"],  # [vocab, H]
        "position_embeddings": t["embeddings.position_embeddings.weight"],  # [max_positions, H]
        "token_type_embeddings": t["embeddings.token_type_embeddings.weight"],  # [type_vocab, H]
        "ln_emb": ln("embeddings.LayerNorm"),
        "layers": layers,
    }
    if classification:
        params["pooler"] = dense("pooler.dense")  # [H, H]
        params["classifier"] = dense("classifier")  # [H, num_labels]
    return params


def load_params(path: Path, cfg: BertConfig, num_labels: int | None = None) -> dict:
    """Read model.safetensors, check it against config.json, and return model.py's parameter dict.

    num_labels: a cross-encoder's BertForSequenceClassification checkpoint with that many labels; its dict also
    holds "pooler" and "classifier" (see to_params).
    """
    return to_params(read_tensors(path, cfg, num_labels), cfg)
