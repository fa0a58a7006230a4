"""errors.py's shared argument checks: each rule written once, and every front end that words it its own way
(the library's exceptions, the server's 400s, the adapters) gives the same verdict."""

from __future__ import annotations

import pytest

from tinyminilm import SentenceTransformer
from tinyminilm.errors import (ApiError, ArgumentError, ArgumentTypeError, TinyMiniLMError, check_device,
                               check_texts, first_bad_text)
from tinyminilm.serve.inputs import parse_openai

TEXTS = [  # (texts, the index at fault, the character of a lone surrogate or None for a non-text item)
    (["ok", None], 1, None),
    (["ok", "fine", 3], 2, None),
    ([b"bytes"], 0, None),
    (["a", [101, 102]], 1, None),
    (["ok", "bad \ud800 here"], 1, 4),
    (["\udfff", None], 0, 0),  # the first problem, whatever its kind
    (["fine", "\U0001f600 is one character"], None, None),
]


@pytest.mark.parametrize("texts, index, at", TEXTS)
def test_the_library_and_the_server_refuse_the_same_item(texts, index, at):
    assert first_bad_text(texts) == (None if index is None else (index, at))
    if index is None:
        check_texts(texts)
        assert parse_openai({"input": texts}, 100, 384).texts == texts
        return
    with pytest.raises(ArgumentTypeError if at is None else ArgumentError, match=rf"^texts\[{index}\] is "):
        check_texts(texts)
    with pytest.raises(ApiError) as refused:
        parse_openai({"input": texts}, 100, 384)
    assert refused.value.status == 400 and refused.value.param == f"input[{index}]"
    if at is not None:
        assert f"lone surrogate \\u{ord(texts[index][at]):04x} at character {at}" in refused.value.message


def test_the_server_takes_dimensions_by_the_librarys_integer_rule():
    for good in (1, 384):
        assert parse_openai({"input": "x", "dimensions": good}, 100, 384).dimensions == good
    for bad in (0, 385, True, 8.0, "8", [8]):
        with pytest.raises(ApiError, match="send an integer from 1 to 384") as refused:
            parse_openai({"input": "x", "dimensions": bad}, 100, 384)
        assert refused.value.status == 400 and refused.value.param == "dimensions"


def test_one_device_check_for_the_constructor_and_encode(model, model_dir):
    with pytest.raises(ArgumentError) as checked:
        check_device("cuda")
    with pytest.raises(ArgumentError) as constructor:
        SentenceTransformer(str(model_dir), device="cuda")
    with pytest.raises(ArgumentError) as encode:
        model.encode("x", device="cuda")
    assert str(checked.value) == str(constructor.value) == str(encode.value)
    check_device(None)
    check_device("cpu")


def test_the_adapters_raise_the_packages_types(model_dir):
    """Still the ValueError / TypeError that framework code catches, and a TinyMiniLMError as well."""
    from tinyminilm.integrations._common import EncodeOptions
    from tinyminilm.integrations.chroma import TinyMiniLMEmbeddingFunction, reembed

    options = EncodeOptions(str(model_dir))
    refusals = [
        (lambda: EncodeOptions(model=3), TypeError),
        (lambda: EncodeOptions(normalize_embeddings="yes"), TypeError),
        (lambda: EncodeOptions.from_config([]), TypeError),
        (lambda: EncodeOptions.from_config({"device": "cpu"}), ValueError),
        (lambda: options.embed("one text, not a list"), TypeError),
        (lambda: options.embed_one(None), TypeError),
        (lambda: options.embed_one("\ud800"), ValueError),
    ]
    ef = TinyMiniLMEmbeddingFunction(model_dir)
    config = ef.get_config()
    refusals.append((lambda: ef.validate_config_update(config, {**config, "truncate_dim": 8}), ValueError))

    class Collection:
        def get(self, **kwargs):
            return {"ids": ["v1"], "documents": [None], "metadatas": [None]}

    refusals.append((lambda: reembed(Collection(), None), ValueError))
    for call, builtin in refusals:
        with pytest.raises(builtin) as e:
            call()
        assert isinstance(e.value, TinyMiniLMError), repr(e.value)
