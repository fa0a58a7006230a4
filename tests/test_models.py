"""Models of the real Hub shapes (tests/model_fixtures.py: all-MiniLM-L12-v2, bge-small-en-v1.5, e5-small-v2,
gte-small, paraphrase-multilingual-MiniLM-L12-v2, random weights) in sentence-transformers 6's file format and the
older one, loaded from their folders and held to what sentence-transformers 6.2 computes with them
(tests/golden/models.npz, include_prompt.npz); and every architecture, module and field tinyminilm does not run,
refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tokenizers import Tokenizer as RustTokenizer

import model_fixtures as mf
import tiny_bert
import tinyminilm
from conftest import GOLDEN, golden_ids
from tinyminilm import ConfigError, SentenceEncoder
from tinyminilm.errors import ApiError
from tinyminilm.serve.counting import TokenCounter
from tinyminilm.tokenization import Tokenizer

TOL = 1e-5  # max abs difference per component, relative to the vector's norm (~20 without Normalize)


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    err = np.abs(got - want).max(axis=1) / np.linalg.norm(want, axis=1)
    worst = int(err.argmax())
    assert err.max() <= TOL, f"{what}: text {worst} off by {err.max():.3g} of its norm ({got[worst, :3]} vs " \
                             f"{want[worst, :3]}); regenerate with scripts/make_golden_models.py if the fixtures moved"


def ragged(golden: dict, prefix: str) -> list[list[int]]:
    flat, off = golden[f"{prefix}ids_flat"], golden[f"{prefix}ids_offsets"]
    return [flat[off[i]:off[i + 1]].tolist() for i in range(len(off) - 1)]


# --------------------------------------------------------------------------------------------------------------
# Every shape in both formats, against sentence-transformers 6.2
# --------------------------------------------------------------------------------------------------------------

CASES = [(shape, fmt) for shape in mf.SHAPES for fmt in mf.FORMATS]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{f}" for s, f in CASES])
def loaded(request, tmp_path_factory, model_dir):
    """(shape, format, the folder loaded): each folder built once (~130 MB, removed after its tests)."""
    shape, fmt = request.param
    root = tmp_path_factory.mktemp(f"{shape}-{fmt}")
    yield shape, fmt, tinyminilm.load(mf.build_model(shape, root, fmt, model_dir=model_dir))
    shutil.rmtree(root, ignore_errors=True)


def test_token_ids_and_limit_are_sentence_transformers(loaded):
    shape, fmt, model = loaded
    golden, texts = mf.golden(shape), mf.golden_texts(shape)
    limit = int(golden["max_seq_length"])
    assert model.max_seq_length == limit
    assert model.token_ids(texts) == ragged(golden, "")
    assert len(model.token_ids(texts[-2:])[0]) == len(model.token_ids(texts[-1:])[0]) == limit  # at, past the limit
    for kind in ("query", "document"):
        prompt = model.prompts[kind]
        assert model.token_ids([prompt + t for t in texts]) == ragged(golden, f"{kind}_"), kind


def test_padding_and_token_counts_use_the_models_own_tokenizer(loaded, model_dir):
    """The tokenizer's pad id (<pad> = 1 for the Unigram shape, [PAD] = 0 for BERT's), token types 0, and the
    server's token counts from the model's tokenizer: the at-limit text passes, the one past it is a 413."""
    shape, fmt, model = loaded
    golden, texts = mf.golden(shape), mf.golden_texts(shape)
    pad = 1 if shape in mf.UNIGRAM_SHAPES else 0
    batch = model.tokenize(["a", texts[-1]])
    n = int(batch["attention_mask"][0].sum())
    assert (batch["input_ids"][0, n:] == pad).all() and n < batch["input_ids"].shape[1]
    assert not batch["token_type_ids"].any()
    counter = TokenCounter(model)
    assert counter.count(texts, True, "input", False, "truncate") == [len(x) for x in ragged(golden, "")]
    assert counter.count([texts[-2]], False, "input", True, "truncate") == [model.max_seq_length]
    whole = RustTokenizer.from_file(str(model.folder / "tokenizer.json"))
    whole.no_truncation()
    whole.no_padding()
    assert model.untruncated_length(texts[-1]) == len(whole.encode(texts[-1]).ids) == model.max_seq_length + 1
    with pytest.raises(ApiError, match=rf"`input\[1\]` has {model.max_seq_length + 1} tokens"):
        counter.count(texts[-2:], False, "input", False, "truncate")


def test_encode_encode_query_encode_document_are_sentence_transformers(loaded):
    shape, fmt, model = loaded
    golden, texts = mf.golden(shape), mf.golden_texts(shape)
    for method in ("encode", "encode_query", "encode_document"):
        got = getattr(model, method)(texts, batch_size=8)
        assert got.dtype == np.float32 and got.shape == golden[method].shape
        assert_close(got, golden[method], f"{shape} {fmt} {method}")
    if shape in ("bge-small", "e5-small"):  # their prompts change the vectors
        assert not np.allclose(golden["encode_query"], golden["encode"], atol=1e-3)


def test_a_typed_mask_token_stays_special_when_the_model_lowercases(model_dir):
    """bge-small's older folder says do_lower_case: true; sentence-transformers then puts a Lowercase step in the
    tokenizer's normalizer, after special tokens are matched, so "[MASK]" and "[SEP]" typed in a text stay single
    tokens (lower-casing the raw text made them "[", "mask", "]")."""
    golden, texts = mf.golden("bge-small"), mf.golden_texts("bge-small")
    i = next(i for i, t in enumerate(texts) if "[MASK]" in t)
    ids = Tokenizer(model_dir / "tokenizer.json", 512, lowercase=True, pad_token_id=0).ids([texts[i]])[0]
    assert ids == golden_ids(golden, i) and 103 in ids and ids.count(102) == 2  # [MASK], and [SEP] typed + final


def test_lowercasing_is_per_character_as_the_tokenizers_library_does_it(model_dir):
    """Python's str.lower() writes a final sigma "ς" where the tokenizers library's Lowercase (and BertNormalizer)
    writes "σ"; a model with do_lower_case must get the tokenizer's ids, with the pre-cut of long texts too."""
    plain = Tokenizer(model_dir / "tokenizer.json", 256, lowercase=False, pad_token_id=0)  # BertNormalizer lowercases
    lower = Tokenizer(model_dir / "tokenizer.json", 256, lowercase=True, pad_token_id=0)
    texts = ["ΟΔΟΣ ΑΘΗΝΑΣ.", "ΑΣ.Β " * 2000, "Σ", "İstanbul ΣΑΣ"]
    assert lower.ids(texts) == plain.ids(texts)
    assert lower._cut is not None  # Lowercase + BertNormalizer still pre-cuts long texts
    assert [lower.untruncated_length(t) for t in texts] == [plain.untruncated_length(t) for t in texts]


@pytest.mark.parametrize("normalizer,steps", [
    (None, ["Lowercase"]),  # the Unigram shape's: no normalizer at all
    ("NFKC", ["Lowercase", "NFKC"]),
    ("Sequence", ["Lowercase", "NFD", "StripAccents"]),  # a Sequence is extended, not nested
    ("Lowercase", ["Lowercase"]),  # already lower-cases: left as it is
])
def test_do_lower_case_puts_a_lowercase_step_first_unless_there_is_one(tmp_path, normalizer, steps):
    from tokenizers import normalizers

    tok = RustTokenizer.from_file(str(mf.FIXTURES / "multilingual-minilm" / "tokenizer.json"))
    tok.normalizer = {None: None, "NFKC": normalizers.NFKC(), "Lowercase": normalizers.Lowercase(),
                      "Sequence": normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()])}[normalizer]
    tok.save(str(tmp_path / "tokenizer.json"))
    lower = Tokenizer(tmp_path / "tokenizer.json", 128, lowercase=True, pad_token_id=1)
    spec = json.loads(lower.backend.to_str())["normalizer"]
    got = [n["type"] for n in spec["normalizers"]] if spec["type"] == "Sequence" else [spec["type"]]
    assert got == steps
    assert lower.ids(["ÉCOLE <mask>"]) == Tokenizer(tmp_path / "tokenizer.json", 128, False, 1).ids(["école <mask>"])


# --------------------------------------------------------------------------------------------------------------
# include_prompt false: the prompt's tokens are left out of pooling
# --------------------------------------------------------------------------------------------------------------

PROMPT_CASES = {"e5-small": {"encode_query": {}, "encode_document": {}}, "bge-small": {"encode_query": {}},
                "multilingual-minilm": {"encode_prompt": {"prompt": "query: "}}}


@pytest.fixture(scope="module")
def prompt_golden():
    with np.load(GOLDEN / "include_prompt.npz") as z:
        return dict(z)


@pytest.mark.parametrize("shape", PROMPT_CASES)
def test_pooling_without_the_prompt_is_sentence_transformers(shape, tmp_path, model_dir, prompt_golden):
    """e5-small (mean), bge-small (CLS: the first token after the prompt) and the Unigram shape (its </s> is not
    counted in the prompt), with 1_Pooling's include_prompt false (scripts/make_golden_include_prompt.py)."""
    folder = mf.build_model(shape, tmp_path, "st6", model_dir=model_dir)
    mf.edit_json(folder / "1_Pooling" / "config.json", include_prompt=False)
    model = tinyminilm.load(folder)
    assert model.config.include_prompt is False
    texts = mf.golden_texts(shape)
    for name, kwargs in PROMPT_CASES[shape].items():
        method = "encode" if name == "encode_prompt" else name
        prompt = kwargs.get("prompt") or model.prompts[method.split("_")[1]]
        assert model.prompt_length(prompt) == int(prompt_golden[f"{shape}/{name}_prompt_length"])
        got = getattr(model, method)(texts, batch_size=8, **kwargs)
        assert_close(got, prompt_golden[f"{shape}/{name}"], f"{shape} {name} without the prompt")
        assert not np.allclose(got, model.encode([prompt + t for t in texts], prompt=""), atol=1e-4)
    np.testing.assert_array_equal(model.encode(texts[:3]), model.encode(texts[:3], prompt=""))  # no prompt: as before
    shutil.rmtree(folder)


# --------------------------------------------------------------------------------------------------------------
# Refused by name: architectures, modules, pooling modes, fields
# --------------------------------------------------------------------------------------------------------------

# config.json of real models of other architectures (the fields that matter; values as their Hub repositories have them)
OTHER_ARCHITECTURES = {
    "mpnet": {  # sentence-transformers/all-mpnet-base-v2
        "architectures": ["MPNetForMaskedLM"], "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu",
        "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
        "model_type": "mpnet", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
        "relative_attention_num_buckets": 32, "vocab_size": 30527},
    "roberta": {  # sentence-transformers/all-distilroberta-v1
        "architectures": ["RobertaModel"], "hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072,
        "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12,
        "num_hidden_layers": 6, "pad_token_id": 1, "position_embedding_type": "absolute", "type_vocab_size": 1,
        "vocab_size": 50265},
    "xlm-roberta": {  # sentence-transformers/paraphrase-multilingual-mpnet-base-v2
        "architectures": ["XLMRobertaModel"], "hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072,
        "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "xlm-roberta",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1,
        "vocab_size": 250002},
    "distilbert": {  # sentence-transformers/msmarco-distilbert-base-v4
        "activation": "gelu", "architectures": ["DistilBertModel"], "dim": 768, "hidden_dim": 3072,
        "max_position_embeddings": 512, "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0,
        "sinusoidal_pos_embds": False, "vocab_size": 30522},
    "nomic_bert": {  # nomic-ai/nomic-embed-text-v1.5
        "activation_function": "swiglu", "architectures": ["NomicBertModel"], "layer_norm_epsilon": 1e-12,
        "model_type": "nomic_bert", "n_embd": 768, "n_head": 12, "n_inner": 3072, "n_layer": 12,
        "n_positions": 8192, "rotary_emb_base": 1000, "type_vocab_size": 2, "vocab_size": 30528},
    "new": {"architectures": ["NewModel"], "hidden_act": "gelu", "hidden_size": 768, "model_type": "new",
            "position_embedding_type": "rope", "num_hidden_layers": 12, "vocab_size": 30528},  # Alibaba gte-v1.5
    "modernbert": {"architectures": ["ModernBertModel"], "hidden_size": 768, "model_type": "modernbert",
                   "global_attn_every_n_layers": 3, "local_attention": 128, "vocab_size": 50368},
}


@pytest.fixture
def folder(tmp_path):
    return tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)


def edit(path, data) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("model_type", OTHER_ARCHITECTURES)
def test_other_architectures_are_refused_naming_config_json_and_model_type(folder, model_type):
    edit(folder / "config.json", OTHER_ARCHITECTURES[model_type])
    with pytest.raises(ConfigError) as e:
        tinyminilm.load(folder)
    message = str(e.value)
    assert str(folder / "config.json") in message and f"model_type {model_type!r} is not supported" in message
    assert "BERT: config.json model_type 'bert' with absolute position embeddings and exact-erf gelu" in message


def test_mpnet_is_refused_by_name_for_what_it_is(folder):
    edit(folder / "config.json", OTHER_ARCHITECTURES["mpnet"])
    with pytest.raises(ConfigError, match=r"model_type 'mpnet' is not supported \(MPNet adds a relative position "
                                          r"bias to its attention\); tinyminilm runs BERT"):
        tinyminilm.load(folder)


@pytest.mark.parametrize("module", ["sentence_transformers.models.Dense", "sentence_transformers.models.WordWeights",
                                    "sentence_transformers.base.modules.dense.Dense",
                                    "sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm",
                                    "sentence_transformers.models.LSTM", "sentence_transformers.models.CNN"])
def test_modules_not_run_are_refused_naming_modules_json(folder, module):
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_X", "type": module})
    edit(folder / "modules.json", modules)
    with pytest.raises(ConfigError) as e:
        tinyminilm.load(folder)
    kind = module.rsplit(".", 1)[1]
    assert str(folder / "modules.json") in str(e.value)
    assert f"module 2 is {module!r}, a {kind} module, which tinyminilm does not run" in str(e.value)
    assert "Transformer -> Pooling [-> Normalize]" in str(e.value)


@pytest.mark.parametrize("pooling,field", [
    ({"pooling_mode_mean_tokens": False, "pooling_mode_weightedmean_tokens": True},
     "pooling_mode_weightedmean_tokens: true"),
    ({"pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True}, "pooling_mode_lasttoken: true"),
    ({"pooling_mode": "weightedmean"}, "pooling_mode 'weightedmean'"),
    ({"pooling_mode": "lasttoken"}, "pooling_mode 'lasttoken'"),
])
def test_pooling_modes_not_run_are_refused_naming_the_field(folder, pooling, field):
    mf.edit_json(folder / "1_Pooling" / "config.json", **pooling)
    with pytest.raises(ConfigError) as e:
        tinyminilm.load(folder)
    assert str(folder / "1_Pooling" / "config.json") in str(e.value) and f"{field} is not supported" in str(e.value)
    assert "['cls', 'max', 'mean', 'mean_sqrt_len_tokens']" in str(e.value)


@pytest.mark.parametrize("pooling,match", [
    ({"pooling_mode": ["mean", "max"]}, r"pooling_mode 'mean', pooling_mode 'max' would concatenate 2 poolings"),
    ({"pooling_mode": "sum"}, r"pooling_mode 'sum' is not one of sentence-transformers'"),
    ({"pooling_output_dimension": 768}, r"unknown field\(s\) \['pooling_output_dimension'\]"),
    ({"include_prompt": "no"}, r"include_prompt should be true or false"),
    ({"word_embedding_dimension": 64}, r"embedding_dimension 64 differs from hidden_size 32"),
])
def test_other_pooling_configs_are_refused_naming_the_field(folder, pooling, match):
    mf.edit_json(folder / "1_Pooling" / "config.json", **pooling)
    with pytest.raises(ConfigError, match=match):
        tinyminilm.load(folder)


@pytest.mark.parametrize("pooling,mode", [
    ({"pooling_mode": "cls", "pooling_mode_mean_tokens": True}, "cls"),  # 6.2 drops the flags beside pooling_mode
    ({"pooling_mode": ["max"]}, "max"),
    ({"pooling_mode_mean_tokens": False}, "mean"),  # no flag true: mean, as sentence-transformers 6.2
    ({"pooling_mode": "mean_sqrt_len_tokens", "embedding_dimension": 32, "word_embedding_dimension": None},
     "mean_sqrt_len"),
])
def test_pooling_fields_are_read_as_sentence_transformers_reads_them(folder, pooling, mode):
    mf.edit_json(folder / "1_Pooling" / "config.json", **pooling)
    assert tinyminilm.load(folder).pooling_mode == mode


@pytest.mark.parametrize("settings,match", [
    ({"max_seq_length": 16, "truncation_side": "left"}, r"unknown field 'truncation_side'"),
    ({"transformer_task": "fill-mask"}, r"transformer_task 'fill-mask' is not supported"),
    ({"module_output_name": "sentence_embedding"}, r"module_output_name 'sentence_embedding' is not supported"),
    ({"query_length": 32}, r"query_length 32 is not supported"),
    ({"model_args": {"torch_dtype": "float16"}}, r"model_args \{'torch_dtype': 'float16'\} is not supported"),
    ({"modality_config": {"text": {"method": "forward", "method_output_name": "logits"}}},
     r"modality_config .* is not supported"),
    ({"do_lower_case": "yes"}, r"'do_lower_case' should be true or false"),
])
def test_sentence_bert_config_fields_that_change_the_output_are_refused(folder, settings, match):
    edit(folder / "sentence_bert_config.json", settings)
    with pytest.raises(ConfigError, match=match) as e:
        tinyminilm.load(folder)
    assert str(folder / "sentence_bert_config.json") in str(e.value)


def test_sentence_bert_config_fields_that_change_nothing_are_accepted(folder):
    reference = tinyminilm.load(folder).encode(tiny_bert.TEXTS)
    edit(folder / "sentence_bert_config.json", {
        "max_seq_length": tiny_bert.MAX_SEQ_LENGTH, "do_lower_case": False, "unpad_inputs": False,
        "transformer_task": "feature-extraction", "module_output_name": "token_embeddings",
        "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        "model_args": {"trust_remote_code": True}, "tokenizer_args": {}, "query_length": None})
    np.testing.assert_array_equal(tinyminilm.load(folder).encode(tiny_bert.TEXTS), reference)


def test_a_normalize_of_another_feature_and_another_model_type_are_refused(folder):
    (folder / "2_Normalize").mkdir()
    edit(folder / "2_Normalize" / "config.json", {"module_input_name": "token_embeddings"})
    with pytest.raises(ConfigError, match=r"2_Normalize/config.json: module_input_name 'token_embeddings'"):
        tinyminilm.load(folder)
    edit(folder / "2_Normalize" / "config.json", {"module_input_name": "sentence_embedding"})
    edit(folder / "config_sentence_transformers.json", {"model_type": "CrossEncoder"})
    with pytest.raises(ConfigError, match=r"config_sentence_transformers.json: model_type 'CrossEncoder'.*"
                                          r"load it with tinyminilm.CrossEncoder"):
        tinyminilm.load(folder)


# --------------------------------------------------------------------------------------------------------------
# Module paths, and a folder without modules.json
# --------------------------------------------------------------------------------------------------------------


def test_each_modules_path_is_honoured(folder):
    """A Transformer saved in 0_Transformer/ and a pooling in 1_Pool/ (as early sentence-transformers saved them)."""
    reference = tinyminilm.load(folder).encode(tiny_bert.TEXTS)
    (folder / "0_Transformer").mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "sentence_bert_config.json"):
        (folder / name).rename(folder / "0_Transformer" / name)
    (folder / "1_Pooling").rename(folder / "1_Pool")
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["path"], modules[1]["path"] = "0_Transformer", "1_Pool"
    edit(folder / "modules.json", modules)
    model = SentenceEncoder.from_folder(folder)  # the folder as it is (hub.resolve only finds folders)
    assert model.max_seq_length == tiny_bert.MAX_SEQ_LENGTH
    np.testing.assert_array_equal(model.encode(tiny_bert.TEXTS), reference)
    modules[0]["path"] = "../elsewhere"
    edit(folder / "modules.json", modules)
    with pytest.raises(ConfigError, match=r"modules.json: module 0 has path '../elsewhere', outside the model folder"):
        SentenceEncoder.from_folder(folder)


def test_without_modules_json_the_folder_is_a_plain_checkpoint(folder):
    """As sentence-transformers: Transformer + mean Pooling, no Normalize, the tokenizer's limit (tokenizer_config.json
    model_max_length 64 here); 1_Pooling and sentence_bert_config.json are not read."""
    mf.edit_json(folder / "1_Pooling" / "config.json", pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (folder / "modules.json").unlink()
    model = tinyminilm.load(folder)
    assert (model.pooling_mode, model.config.normalize, model.max_seq_length) == ("mean", False, 64)
