"""CrossEncoder against sentence-transformers 6.2's (tests/golden/cross.npz, scripts/make_golden_cross.py): token ids,
predict with every activation source, softmax and an explicit activation, rank, max_length from every source; and
the errors for what it cannot take. The models are random ms-marco-MiniLM-L6-v2-shaped cross-encoders rebuilt from
tests/fixtures/cross/ (tests/cross_models.py), so nothing is downloaded and no torch is needed."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

import cross_models as cm
from conftest import GOLDEN
from tinyminilm import ArgumentError, ArgumentTypeError, ConfigError, CrossEncoder
from tinyminilm.activations import identity, sigmoid

TOL = 1e-5  # relative to the largest reference value


def assert_close(got, ref, tol: float = TOL) -> None:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= tol, f"max relative difference {err:.2e} > {tol:.0e}; first values {got.ravel()[:4]} vs " \
                       f"{ref.ravel()[:4]} (regenerate: scripts/make_golden_cross.py)"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "cross.npz") as z:
        return dict(z)


@pytest.fixture(scope="module")
def folders(model_dir, tmp_path_factory) -> dict:
    tmp, cache = tmp_path_factory.mktemp("cross"), {}
    return {v: cm.make_folder(v, model_dir, tmp / v, cache) for v in cm.VARIANTS}


@pytest.fixture(scope="module")
def models(folders) -> dict[str, CrossEncoder]:
    return {v: CrossEncoder(folder) for v, folder in folders.items()}


def golden_ids(golden, key) -> list[tuple[list[int], list[int]]]:
    ids = cm.unragged(golden[f"{key}_ids_flat"], golden[f"{key}_ids_offsets"])
    types = cm.unragged(golden[f"{key}_types_flat"], golden[f"{key}_ids_offsets"])
    return list(zip(ids, types))


# ---------------------------------------------------------------------------------------------------------------
# Against sentence-transformers
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", cm.VARIANTS)
def test_token_ids_and_types_are_the_references(models, golden, variant):
    model = models[variant]
    assert model.max_length == int(golden[f"{variant}_max_length"])
    encoded = model.tokenizer.pair_ids(cm.PAIRS)
    assert encoded == golden_ids(golden, variant)
    for (ids, types), (a, b) in zip(encoded, cm.PAIRS):
        assert ids.count(102) == 2 and types == [0] * (ids.index(102) + 1) + [1] * (len(ids) - ids.index(102) - 1)
    both_cut = encoded[cm.PAIRS.index((cm.LONG_Q, cm.LONG_D))]
    assert len(both_cut[0]) == model.max_length and 0 < sum(both_cut[1]) < model.max_length - 2


def test_max_length_comes_from_where_sentence_transformers_takes_it(models, folders, golden):
    sources = {v: m.config.max_length_source for v, m in models.items()}
    assert sources["no-key"].endswith("tokenizer_config.json: model_max_length, capped at max_position_embeddings")
    assert models["three-labels"].max_length == 48  # its own tokenizer_config.json, as 6.2 saves max_length
    assert sources["st6-saved"].endswith("sentence_bert_config.json: max_seq_length")
    model = CrossEncoder(folders["no-key"], max_length=cm.EXPLICIT_MAX_LENGTH)
    assert model.max_length == model.max_seq_length == int(golden["no-key-max40_max_length"]) == 40
    assert model.tokenizer.pair_ids(cm.PAIRS) == golden_ids(golden, "no-key-max40")
    assert_close(model.predict(cm.PAIRS), golden["no-key-max40_predict"])


def test_without_tokenizer_config_max_length_is_max_position_embeddings(folders, tmp_path):
    folder = shutil.copytree(folders["no-key"], tmp_path / "m")
    (folder / "tokenizer_config.json").unlink()
    model = CrossEncoder(folder)
    assert model.max_length == 512 and model.config.max_length_source.endswith("max_position_embeddings")


@pytest.mark.parametrize("variant", cm.VARIANTS)
def test_predict_with_the_default_activation_matches(models, golden, variant):
    model = models[variant]
    scores = model.predict(cm.PAIRS, batch_size=4)
    assert scores.dtype == np.float32 and scores.shape == ((15,) if model.num_labels == 1 else (15, 3))
    assert_close(scores, golden[f"{variant}_predict"])
    default = cm.VARIANTS[variant][1]  # the activation sentence-transformers picked
    assert model.activation_fn is {"torch.nn.modules.linear.Identity": identity,
                                   "torch.nn.modules.activation.Sigmoid": sigmoid}[default]


@pytest.mark.parametrize("variant", cm.VARIANTS)
def test_predict_with_an_explicit_activation_matches(models, golden, variant):
    model = models[variant]
    assert_close(model.predict(cm.PAIRS, activation_fn=cm.OVERRIDES[variant]), golden[f"{variant}_predict_override"])


def test_three_labels_with_softmax_matches(models, golden):
    probabilities = models["three-labels"].predict(cm.PAIRS, apply_softmax=True)
    assert_close(probabilities, golden["three-labels_predict_softmax"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("variant", ["st4-config", "three-labels"])
def test_a_single_pair_gives_a_scalar_or_one_row(models, golden, variant):
    got = models[variant].predict(cm.PAIRS[0])
    assert np.shape(got) == np.shape(golden[f"{variant}_single"]) == (() if variant == "st4-config" else (3,))
    assert_close(got, golden[f"{variant}_single"])
    assert_close(models[variant].predict(list(cm.PAIRS[0])), golden[f"{variant}_single"])  # a list is a pair too


@pytest.mark.parametrize("variant", cm.ONE_LABEL)
def test_rank_matches(models, golden, variant):
    model = models[variant]
    ranked = model.rank(cm.RANK_QUERY, cm.RANK_DOCS, batch_size=4)
    assert [r["corpus_id"] for r in ranked] == golden[f"{variant}_rank_ids"].tolist()  # ties: corpus order
    assert all(type(r["score"]) is float and set(r) == {"corpus_id", "score"} for r in ranked)
    assert_close([r["score"] for r in ranked], golden[f"{variant}_rank_scores"])
    top = model.rank(cm.RANK_QUERY, cm.RANK_DOCS, top_k=3, return_documents=True)
    assert [r["corpus_id"] for r in top] == golden[f"{variant}_rank_top3_ids"].tolist()
    assert [r["text"] for r in top] == [cm.RANK_DOCS[i] for i in golden[f"{variant}_rank_top3_ids"]]
    overridden = model.rank(cm.RANK_QUERY, cm.RANK_DOCS, activation_fn=cm.OVERRIDES[variant])
    assert [r["corpus_id"] for r in overridden] == golden[f"{variant}_rank_override_ids"].tolist()
    assert_close([r["score"] for r in overridden], golden[f"{variant}_rank_override_scores"])


# ---------------------------------------------------------------------------------------------------------------
# Behaviour of our own
# ---------------------------------------------------------------------------------------------------------------


def test_identical_ids_with_other_token_types_are_not_merged(models):
    """A [SEP] written inside a text gives two pairs the same ids with the segment boundary elsewhere: they must
    be scored apart (deduplication keys on ids and types)."""
    model = models["no-key"]
    pairs = [("berlin [SEP] museums", "open"), ("berlin", "museums [SEP] open")]
    (ids_a, types_a), (ids_b, types_b) = model.tokenizer.pair_ids(pairs)
    assert ids_a == ids_b and types_a != types_b
    together = model.predict(pairs, activation_fn="identity")
    alone = [model.predict(pair, activation_fn="identity") for pair in pairs]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)  # batch or alone: BLAS rounds differently
    assert abs(alone[0] - alone[1]) > 1e-3


def test_batching_and_threads_do_not_change_the_scores(models, golden):
    model = models["st4-config"]
    reference = model.predict(cm.PAIRS, batch_size=32)
    one_by_one = model.predict(cm.PAIRS, batch_size=1)
    np.testing.assert_allclose(one_by_one, reference, rtol=0, atol=1e-5)
    assert np.array_equal(reference[[0]], reference[[13]])  # a duplicate pair: computed once, the same score


def test_output_forms(models):
    model = models["three-labels"]
    as_list = model.predict(cm.PAIRS[:3], convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3 and as_list[0].shape == (3,)
    assert isinstance(model.predict(cm.PAIRS[:3], convert_to_numpy=False, convert_to_tensor=True), np.ndarray)
    assert model.predict([]).shape == (0, 3) and models["no-key"].predict([]).shape == (0,)
    array_pairs = np.array([list(p) for p in cm.PAIRS[:3]])  # a 2-D NumPy string array, as sentence-transformers
    np.testing.assert_array_equal(model.predict(array_pairs), model.predict(cm.PAIRS[:3]))
    assert model.predict((p for p in cm.PAIRS[:3])).shape == (3, 3)  # any iterable of pairs


def test_activation_names_and_callables(models):
    model = models["no-key"]
    logits = model.predict(cm.PAIRS[:4], activation_fn="identity")
    for given in ("sigmoid", "torch.nn.Sigmoid", "torch.nn.modules.activation.Sigmoid", lambda x: 1 / (1 + np.exp(-x))):
        np.testing.assert_allclose(model.predict(cm.PAIRS[:4], activation_fn=given), 1 / (1 + np.exp(-logits)),
                                   rtol=1e-6)

    class Tanh:  # stands in for torch.nn.Tanh(), named as torch names it; torch is not needed to map it
        __module__ = "torch.nn.modules.activation"

        def __call__(self, x):
            raise AssertionError("a torch activation is mapped by its name, never called")

    np.testing.assert_allclose(model.predict(cm.PAIRS[:4], activation_fn=Tanh()), np.tanh(logits), rtol=1e-6)
    model3 = models["three-labels"]
    np.testing.assert_allclose(model3.predict(cm.PAIRS[:4], activation_fn="softmax"),
                               model3.predict(cm.PAIRS[:4], apply_softmax=True), rtol=1e-6)


def test_prompt_goes_in_front_of_the_first_text(models):
    model = models["no-key"]
    prompted = model.predict(cm.PAIRS[:3], prompt="query: ")
    np.testing.assert_array_equal(prompted, model.predict([("query: " + a, b) for a, b in cm.PAIRS[:3]]))
    model.prompts["q"] = "query: "
    try:
        np.testing.assert_array_equal(model.predict(cm.PAIRS[:3], prompt_name="q"), prompted)
    finally:
        del model.prompts["q"]


def test_max_length_is_settable_and_checked(folders):
    model = CrossEncoder(folders["no-key"])
    model.max_length = 40
    assert model.max_length == 40 and len(model.tokenizer.pair_ids([(cm.LONG_Q, cm.LONG_D)])[0][0]) == 40
    for bad in (2, 513, 40.0, "40", None):
        with pytest.raises(ArgumentError, match="max_length"):
            model.max_length = bad


def test_older_arguments_are_taken_as_sentence_transformers_takes_them(folders, caplog):
    with caplog.at_level(logging.WARNING, logger="tinyminilm"):
        model = CrossEncoder(folders["no-key"], 1, 40, "identity", "cpu")  # num_labels, max_length, activation_fn
        assert model.max_length == 40 and model.activation_fn is identity
        model = CrossEncoder(model_name=str(folders["no-key"]), default_activation_function="identity",
                             classifier_dropout=0.1)
        assert model.activation_fn is identity
        assert model.predict(sentences=[cm.PAIRS[0]], activation_fct="sigmoid", num_workers=2).shape == (1,)
    assert "deprecated" in caplog.text
    model = CrossEncoder(folders["no-key"], device="cpu", token="hf_x", revision="main", keep_in_fp32_modules=["x"],
                         trust_remote_code=True, num_labels=1, cache_folder="/nonexistent", local_files_only=True)
    assert model.num_labels == 1


# ---------------------------------------------------------------------------------------------------------------
# What it refuses, and how it says so
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,error,match", [
    (lambda m: m.predict("a single text"), ArgumentTypeError, "inputs must be a .text, text. pair"),
    (lambda m: m.predict([("q", "d"), "oops"]), ArgumentTypeError, r"inputs\[1\] is str, expected a \(text, text\)"),
    (lambda m: m.predict([("q", "d", "e")]), ArgumentError, r"inputs\[0\] has 3 item"),
    (lambda m: m.predict(["q", "d", "e"]), ArgumentError, "inputs has 3 item"),
    (lambda m: m.predict([("q", None)]), ArgumentTypeError, r"inputs\[0\]\[1\] is NoneType, expected str"),
    (lambda m: m.predict([("q", "d"), (3, "d")], prompt="p: "), ArgumentTypeError, r"inputs\[1\]\[0\] is int"),
    (lambda m: m.predict(("q", b"d")), ArgumentTypeError, r"inputs\[1\] is bytes"),
    (lambda m: m.predict([("q", "d"), ("\ud800", "d")]), ArgumentError, r"inputs\[1\]\[0\] is not valid Unicode"),
    (lambda m: m.predict([("q", "d")], batch_size=0), ArgumentError, "batch_size"),
    (lambda m: m.predict([("q", "d")], device="cuda"), ArgumentError, "device='cuda'"),
    (lambda m: m.predict([("q", "d")], activation_fn="relu"), ArgumentError, "activation_fn='relu' is not"),
    (lambda m: m.predict([("q", "d")], activation_fn=lambda x: x[:, :0]), ArgumentError, "must keep the shape"),
    (lambda m: m.predict([("q", "d")], processing_kwargs={}), ArgumentTypeError, "processing_kwargs"),
    (lambda m: m.predict([("q", "d")], prompt_name="nope"), ArgumentError, "prompt_name 'nope'"),
    (lambda m: m.predict(), ArgumentTypeError, "predict needs inputs"),
    (lambda m: m.rank(3, ["d"]), ArgumentTypeError, "query is int"),
    (lambda m: m.rank("q", "one document"), ArgumentTypeError, "documents must be a list of str"),
    (lambda m: m.rank("q", ["d", 7]), ArgumentTypeError, r"documents\[1\] is int"),
    (lambda m: m.rank("q", ["d"], top_k=-1), ArgumentError, "top_k"),
])
def test_bad_input_is_refused_by_name(models, call, error, match):
    with pytest.raises(error, match=match):
        call(models["no-key"])


def test_rank_needs_one_label(models):
    with pytest.raises(ArgumentError, match="rank: this cross-encoder has 3 labels"):
        models["three-labels"].rank("q", ["d"])


@pytest.mark.parametrize("kwargs,match", [
    ({"device": "cuda"}, "device='cuda'"), ({"backend": "onnx"}, "backend='onnx'"),
    ({"model_kwargs": {"torch_dtype": "float16"}}, "model_kwargs"), ({"modules": []}, "modules"),
    ({"num_labels": 2}, "num_labels=2: the checkpoint's classifier has 1"), ({"max_length": 513}, "max_length"),
    ({"activation_fn": "gelu"}, "activation_fn='gelu'"), ({"model_card_data": object()}, "model_card_data"),
    ({"keep_in_fp32_modules": "classifier"}, "keep_in_fp32_modules"),
])
def test_constructor_refuses_what_it_cannot_honour(folders, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        CrossEncoder(folders["no-key"], **kwargs)


def test_constructor_refuses_wrong_models(model_dir):
    with pytest.raises(ArgumentError, match="no default model"):
        CrossEncoder()
    with pytest.raises(ConfigError, match="ForSequenceClassification"):  # a sentence encoder has no classifier
        CrossEncoder(model_dir)
    with pytest.raises(TypeError, match="unexpected keyword argument 'devcie'"):
        CrossEncoder(model_dir, devcie="cpu")


def edited(folders, tmp_path, variant: str, file: str, **changes):
    folder = shutil.copytree(folders[variant], tmp_path / "m")
    data = json.loads((folder / file).read_text())
    data.update(changes)
    (folder / file).write_text(json.dumps(data))
    return folder


def test_an_untrusted_saved_activation_falls_back_as_in_sentence_transformers(folders, tmp_path, caplog):
    folder = edited(folders, tmp_path, "st4-config", "config.json",
                    sentence_transformers={"activation_fn": "mypackage.MyActivation"})
    with caplog.at_level(logging.WARNING, logger="tinyminilm"):
        assert CrossEncoder(folder).activation_fn is sigmoid  # not trusted: the one-label default
    assert "mypackage.MyActivation" in caplog.text and "trust_remote_code" in caplog.text
    with pytest.raises(ConfigError, match="config.json: sentence_transformers.activation_fn: activation "
                                          "'mypackage.MyActivation' is not one tinyminilm has"):
        CrossEncoder(folder, trust_remote_code=True)  # trusted: sentence-transformers would run it; we cannot
    assert CrossEncoder(folder, activation_fn="identity").activation_fn is identity  # given: never read


def test_config_sentence_transformers_json_counts_only_with_modules_json(folders, tmp_path):
    folder = shutil.copytree(folders["st6-saved"], tmp_path / "m")
    assert CrossEncoder(folder).activation_fn is sigmoid  # config_sentence_transformers.json's, before config.json's
    (folder / "modules.json").unlink()  # a plain transformers folder: config.json's key, the default max_length
    model = CrossEncoder(folder)
    assert model.activation_fn is identity and model.max_length == 512


def test_token_ids_and_untruncated_length_count_pairs_as_predict_sees_them(models):
    """What the server counts (and refuses as too long) is what predict runs: the truncated pair, and the whole."""
    model = models["no-key"]
    short, long = ("hello world", "a b c"), (cm.LONG_Q, cm.LONG_D)
    ids = model.token_ids([short, long])
    assert [len(x) for x in ids] == model.tokenize([short, long])["attention_mask"].sum(axis=1).tolist()
    assert len(ids[1]) == model.max_length
    assert model.untruncated_length(short) == len(ids[0]) == 8  # [CLS] hello world [SEP] a b c [SEP]
    whole = (model.untruncated_length((cm.LONG_Q, "")) - 1) + (model.untruncated_length(("", cm.LONG_D)) - 2)
    assert model.untruncated_length(long) == whole > model.max_length  # the two texts' tokens and 3 special ones
    with pytest.raises(ArgumentTypeError, match="pair must be one"):
        model.untruncated_length([short, long])


def test_rank_order_is_rank_s_order():
    from tinyminilm.cross_encoder import rank_order

    scores = np.array([0.5, 2.0, 0.5, -1.0, 2.0], dtype=np.float32)
    assert rank_order(scores) == [1, 4, 0, 2, 3]  # ties keep index order
    assert rank_order(scores, 2) == [1, 4] and rank_order(scores, 0) == [] and rank_order(scores, 9) == [1, 4, 0, 2, 3]
