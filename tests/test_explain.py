"""The learning material: docs/walkthrough.md is current, `tinyminilm explain` matches its golden text, the SVG."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tiny_bert

import tinyminilm
from tinyminilm import cli
from tinyminilm import explain as X

ROOT = Path(__file__).resolve().parent.parent
SVG_NS = "{http://www.w3.org/2000/svg}"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_walkthrough", ROOT / "scripts" / "make_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MW = _load_script()
SENTENCE = MW.SENTENCE


@pytest.fixture(scope="module")
def fox(model) -> X.Explanation:
    return X.explain_text(model, SENTENCE)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tinyminilm.SentenceEncoder:
    name, flag, normalize = tiny_bert.VARIANTS[0]
    return tinyminilm.load(tiny_bert.make_folder(tmp_path_factory.mktemp("tiny") / name, flag, normalize))


def _cells(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # raises if the SVG is not well-formed XML
    assert root.tag == f"{SVG_NS}svg"
    return [e for e in root.iter(f"{SVG_NS}rect") if e.get("class") == "cell"]


# --------------------------------------------------------------------------------------------------------------
# The committed files are current
# --------------------------------------------------------------------------------------------------------------


def test_walkthrough_is_current(model):
    fresh = MW.render(model)
    committed = MW.DOC.read_text(encoding="utf-8")
    if not MW.same_at_rounding(committed, fresh):  # pytest.fail: the diff, not two 20 kB reprs
        pytest.fail("docs/walkthrough.md is out of date (the code or its numbers changed):\n"
                    + MW.diff_hint(committed, fresh, "walkthrough.md") + f"\n{MW.REGENERATE}", pytrace=False)


def test_walkthrough_shows_the_real_code_and_numbers(model, fox):
    doc = MW.DOC.read_text(encoding="utf-8")
    for fn in (tinyminilm.model.embed, tinyminilm.model.attention, tinyminilm.model.encoder_layer,
               tinyminilm.model.pool, tinyminilm.model.normalize):
        if inspect.getsource(fn).strip() not in doc:
            pytest.fail(f"the walkthrough does not show the current source of model.{fn.__name__}; "
                        f"{MW.REGENERATE}", pytrace=False)
    assert " | ".join(str(i) for i in fox.ids) in doc  # the token ids of the example sentence
    assert f"has norm {MW.f4(np.linalg.norm(fox.pooled))}" in doc
    assert "{{" not in doc


def test_same_at_rounding_forgives_the_last_digit_only():
    a = "norm 1.2345 and [0.1000, -0.2000]\n```python\nx = 0.5000\n```\n"
    assert MW.same_at_rounding(a, a.replace("1.2345", "1.2346"))
    assert MW.same_at_rounding(a, a.replace("-0.2000", "-0.2002"))
    assert not MW.same_at_rounding(a, a.replace("1.2345", "1.2355"))  # a real change
    assert not MW.same_at_rounding(a, a.replace("norm", "mean"))  # a word
    assert not MW.same_at_rounding(a, a.replace("x = 0.5000", "x = 0.5001"))  # code is compared exactly
    assert not MW.same_at_rounding(a, a.replace("1.2345 and", "1.2345 1.0000 and"))  # an extra number


def test_explain_output_matches_golden(fox):
    fresh = X.format_explanation(fox)
    committed = MW.strip_header(MW.GOLDEN_EXPLAIN.read_text(encoding="utf-8"))
    if not MW.same_at_rounding(committed, fresh):
        pytest.fail("tinyminilm explain output differs from tests/golden/explain.txt:\n"
                    + MW.diff_hint(committed, fresh, "explain.txt") + f"\n{MW.REGENERATE}", pytrace=False)


def test_committed_picture_has_one_cell_per_layer_head_query_key(fox):
    cells = _cells(MW.PICTURE.read_text(encoding="utf-8"))
    assert len(cells) == 6 * 12 * 12 * 12 == fox.n_layers * fox.n_heads * len(fox.tokens) ** 2


# --------------------------------------------------------------------------------------------------------------
# explain_text and the report
# --------------------------------------------------------------------------------------------------------------


def test_explain_text_returns_what_the_model_computes(model, fox, golden, golden_texts):
    from conftest import golden_ids

    assert fox.tokens == ["[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", ".",
                          "[SEP]"]
    assert fox.ids == model.token_ids([SENTENCE])[0]
    assert len(fox.hidden_states) == 7 and all(h.shape == (12, 384) and h.dtype == np.float32
                                               for h in fox.hidden_states)
    assert len(fox.attentions) == 6
    for a in fox.attentions:
        assert a.shape == (12, 12, 12) and a.dtype == np.float32
        np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fox.embedding, model.encode(SENTENCE), atol=1e-6)
    # the ids agree with sentence-transformers' on a golden text
    i = next(k for k, t in enumerate(golden_texts) if 5 < len(golden_ids(golden, k)) < 40)
    assert X.explain_text(model, golden_texts[i]["text"]).ids == golden_ids(golden, i)


def test_top_attended_is_the_key_with_the_largest_mean_weight(fox):
    top = X.top_attended(fox)
    assert len(top) == 6 and all(len(layer) == 12 for layer in top)
    received = fox.attentions[2][4].mean(axis=0)  # layer 3, head 5: [L]
    assert top[2][4] == (int(received.argmax()), pytest.approx(float(received.max())))
    no_special = X.top_attended(fox, ignore=(0, 11))
    assert all(0 < j < 11 for layer in no_special for j, _ in layer)
    with pytest.raises(ValueError, match="leaves no key"):
        X.top_attended(fox, ignore=tuple(range(12)))


def test_report_of_a_truncated_text_says_so(tiny):
    text = "the cat sat on the mat " * 5  # 30 words; the tiny model keeps 16 tokens
    exp = X.explain_text(tiny, text)
    assert len(exp.ids) == tiny_bert.MAX_SEQ_LENGTH and exp.n_tokens_untruncated > len(exp.ids)
    report = X.format_explanation(exp)
    assert f"truncated from {exp.n_tokens_untruncated} tokens at max_seq_length 16" in report
    assert "  layer 2 " in report and "layer 3" not in report  # the tiny BERT has 2 layers


def test_empty_text_is_explained(tiny):
    exp = X.explain_text(tiny, "")
    assert exp.tokens == ["[CLS]", "[SEP]"]
    assert "leaving out [CLS]" not in X.format_explanation(exp)  # nothing would be left
    assert len(_cells(X.render_svg(exp))) == 2 * 4 * 2 * 2


# --------------------------------------------------------------------------------------------------------------
# The SVG
# --------------------------------------------------------------------------------------------------------------


def test_svg_parses_and_has_one_cell_per_layer_head_query_key(fox):
    svg = X.render_svg(fox)
    cells = _cells(svg)
    assert len(cells) == fox.n_layers * fox.n_heads * 12 * 12
    opacities = [float(c.get("fill-opacity", "0")) for c in cells]
    assert all(0 <= o <= 1 for o in opacities)
    # the darkest cell of the picture is the largest weight (the previous-token head of layer 1 is ~1)
    assert max(opacities) == pytest.approx(max(float(a.max()) for a in fox.attentions), abs=0.006)
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG_NS}text")]
    assert texts.count("fox") == 6 + 12  # query labels on each layer row, key labels under each head column
    assert "head 12" in texts and "layer 6" in texts


def test_svg_of_a_long_text_shows_the_first_tokens_and_says_so(tiny):
    exp = X.explain_text(tiny, "the cat sat on the mat " * 5)  # 16 tokens
    svg = X.render_svg(exp, max_tokens=8)
    assert len(_cells(svg)) == 2 * 4 * 8 * 8
    assert "showing the first 8 of 16 tokens" in svg
    with pytest.raises(ValueError, match="max_tokens"):
        X.render_svg(exp, max_tokens=0)


def test_svg_escapes_markup_in_the_text(tiny):
    exp = X.explain_text(tiny, 'a <b> & "c"')
    ET.fromstring(X.render_svg(exp))  # well-formed despite <, & and quotes in the title and labels


def test_write_svg_is_atomic_and_leaves_no_temporary_file(tmp_path, fox):
    path = X.write_svg(tmp_path / "a.svg", X.render_svg(fox))
    assert [p.name for p in tmp_path.iterdir()] == ["a.svg"]
    assert len(_cells(path.read_text(encoding="utf-8"))) == 6 * 12 * 12 * 12
    with pytest.raises(OSError):
        X.write_svg(tmp_path / "missing" / "b.svg", "<svg/>")
    assert [p.name for p in tmp_path.iterdir()] == ["a.svg"]


# --------------------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------------------


def test_cli_explain_prints_the_report_and_writes_the_svg(model_dir, tmp_path, capsys):
    svg = tmp_path / "attention.svg"
    assert cli.main(["explain", SENTENCE, "--model", str(model_dir), "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    report, _, tail = out.partition("\nwrote ")
    golden = MW.strip_header(MW.GOLDEN_EXPLAIN.read_text(encoding="utf-8"))
    assert MW.same_at_rounding(golden, report)
    assert "6 layers × 12 heads over 12 tokens" in tail
    assert len(_cells(svg.read_text(encoding="utf-8"))) == 6 * 12 * 12 * 12


def test_cli_explain_reports_an_unwritable_svg_path(model_dir, tmp_path, capsys):
    rc = cli.main(["explain", "a dog", "--model", str(model_dir), "--svg", str(tmp_path / "no" / "a.svg")])
    err = capsys.readouterr().err
    assert rc == 2 and "--svg" in err and "does not exist" in err
    assert not (tmp_path / "no").exists()


def test_library_functions_do_not_print(tiny, capsys):
    exp = X.explain_text(tiny, "the cat")
    X.format_explanation(exp)
    X.render_svg(exp)
    assert capsys.readouterr() == ("", "")


def test_svg_labels_every_kth_token_when_cells_are_small(tiny):
    exp = X.explain_text(tiny, "the cat sat on the mat " * 5)  # 16 tokens
    svg = X.render_svg(exp, max_tokens=16)
    assert "one token in" not in svg  # 16 tokens still get 9-px cells: every label fits
    many = X.Explanation(**{**exp.__dict__, "tokens": exp.tokens * 3,
                            "attentions": [np.tile(a, (1, 3, 3)) / 3 for a in exp.attentions]})  # 48 tokens
    svg = X.render_svg(many, max_tokens=48)
    assert "one token in 3 labelled" in svg and len(_cells(svg)) == 2 * 4 * 48 * 48
