"""Crafted broken model folders: each is refused with a tinyminilm error naming the file and the problem.

The safetensors files here are written byte by byte (8-byte little-endian header length, JSON header, tensor
bytes), so a test can break exactly one thing. tests/test_loading.py covers missing/unexpected tensors, wrong
shapes, float16, NaN/Inf and a file cut in half; this file covers the file layout itself and the other files.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import tiny_bert
import tinyminilm
from tinyminilm import ConfigError, TokenizerError, WeightsError

_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}


@pytest.fixture
def folder(tmp_path):
    return tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)


def layout(tensors: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    """The header dict and data bytes of a well-formed safetensors file holding `tensors`, in order."""
    header, chunks, pos = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    return header, b"".join(chunks)


def raw_file(header: dict | bytes, data: bytes, header_len: int | None = None) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # safetensors pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(h) if header_len is None else header_len) + h + data


def refused(folder, match: str) -> str:
    with pytest.raises(WeightsError) as e:
        tinyminilm.load(folder)
    msg = str(e.value)
    assert "model.safetensors" in msg and match in msg, msg
    return msg


def test_a_hand_written_file_loads(folder):
    """The writer below is right: an intact hand-written file loads and encodes like save_file's."""
    before = tinyminilm.load(folder).encode(["the cat sat"])
    (folder / "model.safetensors").write_bytes(raw_file(*layout(tiny_bert.make_weights())))
    assert np.array_equal(tinyminilm.load(folder).encode(["the cat sat"]), before)


@pytest.mark.parametrize("keep,match", [
    (0, "too short to hold the 8-byte header length"),
    (5, "too short to hold the 8-byte header length"),
    (8 + 40, "but only 40 bytes follow"),  # cut inside the JSON header
    (-1, "it is truncated"),  # one byte short
    (-4000, "it is truncated"),  # cut inside the tensor data
])
def test_truncated_file(folder, keep, match):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    refused(folder, match)


def test_header_length_beyond_the_file(folder):
    header, data = layout(tiny_bert.make_weights())
    (folder / "model.safetensors").write_bytes(raw_file(header, data, header_len=len(data) * 2))
    refused(folder, f"but only {len(raw_file(header, data)) - 8} bytes follow")


@pytest.mark.parametrize("n", [2 ** 63, 10 ** 9])
def test_absurd_header_size(folder, n):
    header, data = layout(tiny_bert.make_weights())
    (folder / "model.safetensors").write_bytes(raw_file(header, data, header_len=n))
    refused(folder, f"header length field says {n} bytes, more than the 100000000")


def test_duplicate_tensor_name(folder):
    """JSON keeps the last of two equal keys and the safetensors library accepts such a file; we do not."""
    t = tiny_bert.make_weights()
    header, data = layout(t)
    key = "embeddings.LayerNorm.bias"
    text = json.dumps(header)
    # a first, different entry for the same name: the file is ambiguous about what this tensor is
    decoy = json.dumps({"dtype": "F32", "shape": [8], "data_offsets": header[key]["data_offsets"]})
    text = text[:-1] + f', "{key}": ' + json.dumps(header[key]) + "}"
    text = "{" + f'"{key}": {decoy}, ' + text[1:]
    (folder / "model.safetensors").write_bytes(raw_file(text.encode(), data))
    refused(folder, f"the header names tensor '{key}' twice")


def test_overlapping_offsets(folder):
    t = tiny_bert.make_weights()
    header, data = layout(t)
    a, b = "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"
    header[b]["data_offsets"] = list(header[a]["data_offsets"])  # b reads a's bytes
    (folder / "model.safetensors").write_bytes(raw_file(header, data))
    msg = refused(folder, "overlap")
    assert a in msg and b in msg


def test_out_of_range_offsets(folder):
    header, data = layout(tiny_bert.make_weights())
    last = list(header)[-1]
    begin, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [begin + 64, end + 64]
    (folder / "model.safetensors").write_bytes(raw_file(header, data))
    refused(folder, f"tensor '{last}' ends at byte {end + 64} of the data, but the file holds only {len(data)}")


def test_reversed_offsets(folder):
    header, data = layout(tiny_bert.make_weights())
    first = list(header)[0]
    begin, end = header[first]["data_offsets"]
    header[first]["data_offsets"] = [end, begin]
    (folder / "model.safetensors").write_bytes(raw_file(header, data))
    refused(folder, "not 0 <= begin <= end")


@pytest.mark.parametrize("header,match", [
    (b"{not json", "its header is not valid JSON"),
    (b"[1, 2, 3]", "its header is not a JSON object"),
    (b"\xff\xfe\x00\x01", "its header is not UTF-8 text"),
    (b'{"embeddings.LayerNorm.bias": {"dtype": "F32", "shape": [32]}}', "has no valid data_offsets"),
])
def test_malformed_header(folder, header, match):
    (folder / "model.safetensors").write_bytes(raw_file(header, b"\0" * 128))
    refused(folder, match)


def test_sizes_that_disagree_with_the_shape(folder):
    """dtype x shape must fill the byte range exactly; the safetensors library checks it, we name the file."""
    header, data = layout(tiny_bert.make_weights())
    key = "embeddings.LayerNorm.bias"
    header[key]["shape"] = [16]  # 64 bytes claimed by a [16] float32: 128 expected
    (folder / "model.safetensors").write_bytes(raw_file(header, data))
    refused(folder, "not a readable safetensors file")


def test_float64_is_refused_not_cast(folder):
    t = tiny_bert.make_weights()
    t["embeddings.word_embeddings.weight"] = t["embeddings.word_embeddings.weight"].astype(np.float64)
    (folder / "model.safetensors").write_bytes(raw_file(*layout(t)))
    refused(folder, "embeddings.word_embeddings.weight has dtype F64, expected F32")


def test_transposed_tensor_is_refused(folder):
    t = tiny_bert.make_weights()
    key = "encoder.layer.0.intermediate.dense.weight"
    t[key] = np.ascontiguousarray(t[key].T)  # [32, 37] instead of torch's [out, in] = [37, 32]
    (folder / "model.safetensors").write_bytes(raw_file(*layout(t)))
    refused(folder, f"{key} has shape (32, 37), config.json implies (37, 32)")


def test_weights_path_is_a_directory(folder):
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    refused(folder, "file not found")


# ------------------------------------------------------------------------------------------------------------
# tokenizer.json and the JSON configuration files
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"{}", b'{"model": {"type": "WordPiece"}}', b"\x00\x01\x02garbage",
                                     b"[]"])
def test_corrupt_tokenizer(folder, content):
    (folder / "tokenizer.json").write_bytes(content)
    with pytest.raises(TokenizerError) as e:
        tinyminilm.load(folder)
    assert "tokenizer.json: cannot be loaded" in str(e.value)


def test_truncated_tokenizer(folder):
    path = folder / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(TokenizerError, match="tokenizer.json: cannot be loaded"):
        tinyminilm.load(folder)


@pytest.mark.parametrize("name", ["config.json", "sentence_bert_config.json", "modules.json",
                                  "1_Pooling/config.json"])
@pytest.mark.parametrize("content,match", [
    (b"", "not valid JSON"),
    (b'{"a": 1,', "not valid JSON"),
    (b"\xff\xfe\xfa", "cannot be read"),
    (b'"a string"', "expected a JSON"),
])
def test_corrupt_json_files(folder, name, content, match):
    (folder / name).write_bytes(content)
    with pytest.raises(ConfigError) as e:
        tinyminilm.load(folder)
    assert name in str(e.value) and match in str(e.value), str(e.value)


def test_missing_config_json(folder):
    (folder / "config.json").unlink()
    with pytest.raises(ConfigError, match="config.json: file not found"):
        tinyminilm.load(folder)
