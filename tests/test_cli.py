"""The command line end to end: every command, every input and output format, bad inputs, interrupts.

Most tests run `main([...])` in-process on a tiny random BERT folder (fast, no download); the real model is used
where the numbers matter (the prose check at the end, similarity, info), and a few runs go through a real
`python -m tinyminilm` subprocess, including one interrupted by a signal mid-stream.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest

import tiny_bert
import tinyminilm
from tinyminilm.cli import main
from tinyminilm.encoder import SentenceEncoder
from tinyminilm.errors import InputError

# Prose of our own writing; every line about something different, so no two are near-duplicates.
PROSE = """\
The lighthouse keeper climbed the spiral stairs at dusk to light the lamp.
Sourdough bread needs a starter that has been fed with flour and water for days.
A binary search halves the remaining interval at every step.
The orchestra tuned to the oboe's A before the conductor walked on stage.
Glaciers carve U-shaped valleys as they grind slowly downhill.
She paid for the train ticket with coins she had saved in a jar.
Photosynthesis turns sunlight, water and carbon dioxide into sugar.
The referee showed a red card after the second dangerous tackle.
Compound interest makes small savings grow large over decades.
Owls can turn their heads much farther than people can.
The museum closed its east wing while the roof was being repaired.
A good password is long, random and never reused across websites.
Tomatoes ripen faster when stored next to bananas.
The committee postponed the vote until every member had read the report.
Volcanic ash can ground airplanes for days across a whole continent.
He learned to juggle three oranges during a long rainy weekend.
Version control lets a team see who changed each line and why.
The desert cools quickly after sunset because dry air holds little heat.
Her grandmother's recipe for plum dumplings was never written down.
Bees communicate the direction of flowers with a waggle dance.

Errors should never pass silently, unless explicitly silenced.
The ferry to the island runs twice a day in winter.
A thermostat switches the heating on when the room gets too cold.
Chess openings are memorised, but the middle game rewards imagination.
The library lends tools as well as books to its members.
Rust forms on iron when it meets both oxygen and moisture.
The marathon route follows the river and finishes in the old square.
Good maps show scale, a legend and which way is north.
Whales sing songs that change slowly from one year to the next.
The startup ran out of money before its product reached customers.
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_bert.make_folder(tmp_path_factory.mktemp("tiny") / "t", "pooling_mode_mean_tokens", True)


@pytest.fixture(scope="module")
def tiny_model(tiny):
    return tinyminilm.load(tiny)


TINY_TEXTS = ["the cat sat on the mat.", "a quick brown fox jumps over the lazy dog!", "hello world",
              "the dogs jumped quickly", "sentence vectors", "hello world", "fox", "the lazy cat",
              "a brown dog", "world sentence"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer may have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or "tinyminilm-stage" in p.name)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------------------
# embed: inputs and outputs
# --------------------------------------------------------------------------------------------------------------

def test_embed_texts_as_arguments_prints_json_arrays(capsys, tiny, tiny_model):
    code, out, err = run(capsys, "embed", "--model", tiny, "hello world", "the cat sat")
    assert code == 0, err
    rows = np.array([json.loads(line) for line in out.splitlines()])
    np.testing.assert_allclose(rows, tiny_model.encode(["hello world", "the cat sat"]), atol=1e-7)


def test_embed_txt_to_npy_skips_blank_lines(capsys, tmp_path, tiny, tiny_model):
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS[:4]) + "\n\n   \n" + "\n".join(TINY_TEXTS[4:]) + "\n")
    code, out, err = run(capsys, "embed", "--model", tiny, "--input", src, "--output", tmp_path / "out.npy")
    assert code == 0, err
    assert out == ""
    emb = np.load(tmp_path / "out.npy")
    assert emb.dtype == np.float32 and emb.shape == (len(TINY_TEXTS), 32)
    np.testing.assert_allclose(emb, tiny_model.encode(TINY_TEXTS), atol=1e-6)
    assert leftovers(tmp_path) == []


def test_embed_jsonl_field_to_jsonl_output_keeps_ids_and_lines(capsys, tmp_path, tiny, tiny_model):
    lines = [json.dumps({"body": t, "n": i}) for i, t in enumerate(TINY_TEXTS[:3])]
    src = write(tmp_path / "in.jsonl", lines[0] + "\n\n" + lines[1] + "\n" + lines[2])  # a blank line, no final \n
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "--field", "body", "-o", tmp_path / "out.jsonl")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["id"], r["line"]) for r in records] == [(0, 1), (1, 3), (2, 4)]
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]), tiny_model.encode(TINY_TEXTS[:3]),
                               atol=1e-7)


@pytest.mark.parametrize("sep,suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_embed_csv_and_tsv_column(capsys, tmp_path, tiny, tiny_model, sep, suffix):
    texts = ["hello world", 'the cat, "sat"\non the mat.', "fox"]  # a delimiter, quotes and a newline in a cell
    import csv

    with open(tmp_path / f"in{suffix}", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(["id", "body"])
        for i, t in enumerate(texts):
            w.writerow([i, t])
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", tmp_path / f"in{suffix}", "--column", "body",
                       "-o", tmp_path / "out.jsonl")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 3, 5]  # the second record spans lines 3 and 4
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]), tiny_model.encode(texts), atol=1e-7)


def test_embed_csv_with_a_byte_order_mark(capsys, tmp_path, tiny, tiny_model):
    (tmp_path / "in.csv").write_bytes(b"\xef\xbb\xbftext\nhello world\n")  # as Excel writes it
    code, out, err = run(capsys, "embed", "--model", tiny, "-i", tmp_path / "in.csv")
    assert code == 0, err
    np.testing.assert_allclose(np.array([json.loads(out)]), tiny_model.encode(["hello world"]), atol=1e-7)


@pytest.mark.parametrize("fmt,data,texts", [
    ("txt", b"hello world\nfox\n", ["hello world", "fox"]),
    ("jsonl", b'{"text": "fox"}\n{"text": "the cat"}\n', ["fox", "the cat"]),
])
def test_embed_from_stdin(capsys, monkeypatch, tmp_path, tiny, tiny_model, fmt, data, texts):
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data), isatty=lambda: False))
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", "-", "--format", fmt, "-o", tmp_path / "out.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), tiny_model.encode(texts), atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_embed_precision_and_truncate_dim_match_encode_across_chunks(capsys, tmp_path, tiny, tiny_model, precision):
    texts = [f"{a} {b}" for a in ("the cat", "a dog", "hello", "fox", "the mat") for b in ("sat", "world", "jumps",
                                                                                            "over", "lazy", "on")]
    src = write(tmp_path / "in.txt", "\n".join(texts))
    # batch 2 -> chunks of 16 texts: int8 ranges must still come from all 30 texts, as model.encode computes them
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "-o", tmp_path / "out.npy", "--batch-size", 2,
                       "--precision", precision, "--truncate-dim", 20)
    assert code == 0, err
    got = np.load(tmp_path / "out.npy")
    want = tiny_model.encode(texts, precision=precision, truncate_dim=20)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= (1 if precision.endswith("int8") else 0)
    assert leftovers(tmp_path) == []


def test_progress_bar_on_stderr_counted_in_texts(capsys, tmp_path, tiny):
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS))
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "-o", tmp_path / "o.npy", "--progress")
    assert code == 0
    assert f"{len(TINY_TEXTS)}/{len(TINY_TEXTS)}" in err and "text" in err
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "-o", tmp_path / "o.npy")  # stderr not a tty
    assert code == 0 and err == ""


def test_streaming_a_large_file_keeps_memory_bounded_by_the_batch(capsys, monkeypatch, tmp_path, tiny, tiny_model):
    rng = np.random.default_rng(0)
    words = np.array(tiny_bert.VOCAB[32:-5])
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(10_000)]
    write(tmp_path / "big.txt", "\n".join(texts) + "\n")
    write(tmp_path / "small.txt", "\n".join(texts[:1_000]) + "\n")
    sizes = []
    original = SentenceEncoder.encode

    def spy(self, sentences, *args, **kwargs):
        sizes.append(len(sentences))
        return original(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "encode", spy)
    assert run(capsys, "embed", "--model", tiny, "-i", tmp_path / "small.txt", "-o", tmp_path / "warm.npy")[0] == 0
    peaks = {}  # measured after a warm-up run, so first-time imports do not count
    for name in ("small", "big"):
        tracemalloc.start()
        code, _, err = run(capsys, "embed", "--model", tiny, "-i", tmp_path / f"{name}.txt", "-o",
                           tmp_path / f"{name}.npy", "--batch-size", 32)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert code == 0, err
    assert max(sizes) == 8 * 32  # the encoder never sees more than a chunk of 8 batches
    # 10x the lines, about the same peak: holding the 9,000 extra vectors alone would add 9000 * 32 * 4 bytes
    # (reading the whole file first measured +1.5 MB; streaming, +0.1 MB over a ~1 MB peak spent mostly loading)
    assert peaks["big"] - peaks["small"] < 9_000 * 32 * 4 / 4, peaks
    monkeypatch.setattr(SentenceEncoder, "encode", original)
    np.testing.assert_allclose(np.load(tmp_path / "big.npy"), tiny_model.encode(texts, batch_size=256), atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# search, dedup, similarity
# --------------------------------------------------------------------------------------------------------------

def test_search_caches_corpus_embeddings_and_reuses_them_while_unchanged(capsys, monkeypatch, tmp_path, tiny,
                                                                         tiny_model):
    corpus = write(tmp_path / "corpus.txt", "\n".join(TINY_TEXTS))
    calls = []
    original = SentenceEncoder.encode

    def spy(self, sentences, *args, **kwargs):
        calls.append(list(sentences))
        return original(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "encode", spy)

    def search(*extra):
        calls.clear()
        code, out, err = run(capsys, "search", "--model", tiny, "--corpus", corpus, "--json", "-k", 3, *extra,
                             "the lazy cat")
        assert code == 0, err
        return json.loads(out), [c for c in calls if c != ["the lazy cat"]]

    result, corpus_calls = search()
    assert corpus_calls == [TINY_TEXTS]  # embedded once...
    cache = tmp_path / "corpus.txt.tinyminilm.npy"
    np.testing.assert_allclose(np.load(cache), tiny_model.encode(TINY_TEXTS), atol=1e-6)
    meta = json.loads((tmp_path / "corpus.txt.tinyminilm.npy.json").read_text())
    assert meta["texts"] == len(TINY_TEXTS) and meta["model"].startswith("sha256:")
    hits = result["hits"]
    assert result["query"] == "the lazy cat" and len(hits) == 3
    assert hits[0]["text"] == "the lazy cat" and hits[0]["index"] == 7 and hits[0]["line"] == 8
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    scores = tiny_model.encode(TINY_TEXTS) @ tiny_model.encode("the lazy cat")
    assert [h["index"] for h in hits] == list(np.argsort(-scores, kind="stable")[:3])

    again, corpus_calls = search()
    assert corpus_calls == [] and again == result  # ...and reused while nothing changed

    _, corpus_calls = search("--truncate-dim", 16)  # other options: a different cache key
    assert corpus_calls == [TINY_TEXTS]

    changed = ["the lazy dog" if t == "fox" else t for t in TINY_TEXTS]  # same number of lines, one text differs
    write(corpus, "\n".join(changed))
    result, corpus_calls = search()
    assert corpus_calls == [changed]
    np.testing.assert_allclose(np.load(cache), tiny_model.encode(changed), atol=1e-6)

    elsewhere = tmp_path / "cache" / "emb.npy"
    elsewhere.parent.mkdir()
    _, corpus_calls = search("--embeddings", elsewhere)
    assert corpus_calls == [changed] and elsewhere.is_file() and Path(str(elsewhere) + ".json").is_file()
    _, corpus_calls = search("--embeddings", elsewhere)
    assert corpus_calls == []


def test_search_table_output_and_several_queries(capsys, tmp_path, tiny):
    corpus = write(tmp_path / "c.jsonl", "".join(json.dumps({"t": t}) + "\n" for t in TINY_TEXTS))
    code, out, err = run(capsys, "search", "--model", tiny, "-c", corpus, "--field", "t", "-k", 2, "fox", "hello world")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "query: fox" and lines[3] == "query: hello world" and len(lines) == 6
    assert lines[1].split()[:5] == ["1", "1.0000", "line", "7", "fox"]
    assert lines[4].split()[-2:] == ["hello", "world"]


def test_dedup_groups_near_duplicates(capsys, tmp_path, tiny):
    # the random tiny model knows no paraphrases, but its tokenizer lowercases: "Hello World" == "hello world"
    texts = ["the cat sat on the mat.", "fox", "hello world", "sentence vectors", "a quick brown fox jumps",
             "the cat sat", "hello world", "Hello World", "fox"]
    src = write(tmp_path / "in.txt", "\n\n".join(texts))  # blank lines between texts: lines are 1, 3, 5, ...
    code, out, err = run(capsys, "dedup", "--model", tiny, "-i", src, "--threshold", "0.999")
    assert code == 0, err
    groups = [json.loads(line) for line in out.splitlines()]
    assert [g["indices"] for g in groups] == [[2, 6, 7], [1, 8]]  # largest group first
    assert groups[0]["texts"] == ["hello world", "hello world", "Hello World"] and groups[0]["lines"] == [5, 13, 15]
    assert groups[0]["size"] == 3 and groups[0]["center"] in (2, 6, 7)
    assert groups[1]["texts"] == ["fox", "fox"]


def test_similarity_prints_the_cosine(capsys, tiny, tiny_model):
    code, out, err = run(capsys, "similarity", "--model", tiny, "the cat sat", "a lazy dog")
    assert code == 0, err
    a, b = tiny_model.encode(["the cat sat", "a lazy dog"])
    assert float(out) == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-6)


# --------------------------------------------------------------------------------------------------------------
# download, info, help
# --------------------------------------------------------------------------------------------------------------

def test_download_into_a_folder_that_holds_the_files(capsys, model_dir):
    code, out, err = run(capsys, "download", "--dir", model_dir)
    assert code == 0, err
    assert out.strip() == f"model files verified in {model_dir}"


def test_info_reports_model_hashes_dimension_and_blas(capsys, model_dir, tiny):
    code, out, err = run(capsys, "info", "--model", model_dir)
    assert code == 0, err
    assert "9/9 files match sentence-transformers/all-MiniLM-L6-v2" in out
    assert out.count("\n  ok       ") == 9
    assert "dimension       384" in out and "max_seq_length  256" in out
    blas = next(line for line in out.splitlines() if line.startswith("BLAS threads"))
    assert blas.split()[2].isdigit() and int(blas.split()[2]) >= 1  # the thread count was read from the library
    code, out, _ = run(capsys, "info", "--model", tiny)  # another model: reported, not an error
    assert code == 0 and "0/9 files match" in out and "dimension       32" in out and "max_seq_length  16" in out


def test_help_and_usage_errors_return_a_status(capsys):
    assert run(capsys, "--help")[0] == 0
    code, _, err = run(capsys, "embed", "--batch-size", "0", "x")
    assert code == 2 and "argument --batch-size: must be a positive integer, got 0" in err  # errors.check_int's words
    code, _, err = run(capsys, "search", "query")
    assert code == 2 and "--corpus" in err


# --------------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr naming file and line, status 2, an existing output untouched
# --------------------------------------------------------------------------------------------------------------

BAD_INPUTS = [
    # (name, file contents, extra args, what the message must say)
    ("missing.txt", None, [], "missing.txt: no such file"),
    ("latin1.txt", b"fine\ncaf\xe9 au lait\n", [], "latin1.txt:2: not valid UTF-8"),
    ("broken.jsonl", b'{"text": "a"}\n{"text": "b"}\n{"text": "c"\n', [], "broken.jsonl:3: malformed JSON"),
    ("nofield.jsonl", b'{"text": "a"}\n{"body": "b"}\n', [], "nofield.jsonl:2: no field 'text'"),
    ("notstr.jsonl", b'{"text": 3}\n', [], "notstr.jsonl:1: field 'text' is int"),
    ("surrogate.jsonl", b'{"text": "\\ud800"}\n', [], "surrogate.jsonl:1: the text holds a lone surrogate"),
    ("nocol.csv", b"id,body\n1,hello\n", [], "nocol.csv:1: no column 'text'"),
    ("short.tsv", b"id\ttext\n1\thello\n2\n", [], "short.tsv:3: the row has 1 field(s)"),
    ("empty.txt", b"", [], "empty.txt: empty input"),
    ("blank.txt", b"\n  \n\n", [], "blank.txt: empty input"),
    ("header.csv", b"text\n", [], "header.csv: empty input"),
    ("doc.json", b'["a"]', [], "doc.json: a .json file is not read"),
    ("ok.txt", b"hello\n", ["--field", "x"], "--field applies to .jsonl inputs"),
    ("ok.txt", b"hello\n", ["--truncate-dim", "33"], "--truncate-dim must be an integer from 1 to 32"),
]


@pytest.mark.parametrize("name,data,extra,message", BAD_INPUTS, ids=[b[0] + "".join(b[2]) for b in BAD_INPUTS])
@pytest.mark.parametrize("out_name", ["out.npy", "out.jsonl"])
def test_bad_input_is_one_line_and_leaves_existing_output_untouched(capsys, tmp_path, tiny, name, data, extra,
                                                                    message, out_name):
    if data is not None:
        (tmp_path / name).write_bytes(data)
    out = tmp_path / out_name
    out.write_bytes(b"precious results from yesterday")
    before = out.stat()
    code, stdout, err = run(capsys, "embed", "--model", tiny, "-i", tmp_path / name, "-o", out, *extra)
    assert code == 2
    assert stdout == ""
    assert err.startswith("tinyminilm: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert out.read_bytes() == b"precious results from yesterday" and out.stat().st_mtime_ns == before.st_mtime_ns
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["search", "dedup"])
def test_search_and_dedup_refuse_bad_input_the_same_way(capsys, tmp_path, tiny, command):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text": "a"}\nnot json\n')
    args = ["--corpus", src, "query"] if command == "search" else ["--input", src]
    code, out, err = run(capsys, command, "--model", tiny, *args)
    assert code == 2 and out == ""
    assert err.startswith("tinyminilm: error: ") and "bad.jsonl:2: malformed JSON" in err and err.count("\n") == 1
    assert not list(tmp_path.glob("bad.jsonl.tinyminilm*"))


def test_missing_model_folder_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "similarity", "--model", tmp_path / "nowhere", "a", "b")
    assert code == 2 and err.startswith("tinyminilm: error: model ") and "no such folder" in err


def _explode_on_call(monkeypatch, n: int, exc: BaseException) -> None:
    """Make SentenceEncoder.encode raise `exc` on its n-th call (the first n-1 calls encode normally)."""
    original = SentenceEncoder.encode
    calls = []

    def encode(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "encode", encode)


@pytest.mark.parametrize("out_name", ["out.npy", "out.jsonl"])
@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("error,status", [(InputError, 2), (ValueError, 1)], ids=["bad-input", "bug"])
def test_error_mid_stream_leaves_existing_output_untouched(capsys, monkeypatch, tmp_path, tiny, out_name, precision,
                                                           error, status):
    """An error tinyminilm raised on purpose is one line, exit 2; anything else is a bug: a traceback, exit 1.
    Either way the existing output is left as it was."""
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS * 4))
    out = tmp_path / out_name
    out.write_bytes(b"precious")
    _explode_on_call(monkeypatch, 3, error("simulated failure in the third chunk"))
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "-o", out, "--batch-size", 1,
                       "--precision", precision)
    assert code == status and "simulated failure" in err
    if status == 2:
        assert err.count("\n") == 1 and "Traceback" not in err
    else:
        assert "Traceback (most recent call last)" in err and "internal error" in err and "report it" in err
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("out_name", ["out.npy", "out.jsonl"])
def test_keyboard_interrupt_mid_stream_leaves_no_output_file(capsys, monkeypatch, tmp_path, tiny, out_name):
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS * 4))
    _explode_on_call(monkeypatch, 3, KeyboardInterrupt())
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src, "-o", tmp_path / out_name, "--batch-size", 1)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_keyboard_interrupt_while_caching_leaves_no_cache(capsys, monkeypatch, tmp_path, tiny):
    corpus = write(tmp_path / "corpus.txt", "\n".join(TINY_TEXTS * 4))
    _explode_on_call(monkeypatch, 2, KeyboardInterrupt())
    code, _, _ = run(capsys, "search", "--model", tiny, "-c", corpus, "--batch-size", 1, "query")
    assert code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


SLOW_MAIN = """
import sys, time
from tinyminilm.encoder import SentenceEncoder
from tinyminilm.cli import main
original = SentenceEncoder.encode
def slow(self, *args, **kwargs):
    time.sleep(0.25)
    return original(self, *args, **kwargs)
SentenceEncoder.encode = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig,status,existing", [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)])
def test_a_signal_mid_run_leaves_no_partial_output(tmp_path, tiny, sig, status, existing):
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS * 40))  # 400 texts, 25 slowed chunks of 16
    out = tmp_path / "out.npy"
    if existing:
        out.write_bytes(b"precious")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MAIN, "embed", "--model", str(tiny), "-i", str(src),
                             "-o", str(out), "--batch-size", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "the run never started writing its temporary file"
    time.sleep(0.6)  # a few chunks in
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert leftovers(tmp_path) == []
    if existing:
        assert out.read_bytes() == b"precious"
    else:
        assert not out.exists()


# --------------------------------------------------------------------------------------------------------------
# Real subprocess runs, and the "done when" check with the real model on prose
# --------------------------------------------------------------------------------------------------------------

def test_subprocess_embed_file_and_search(tmp_path, tiny, tiny_model):
    src = write(tmp_path / "in.txt", "\n".join(TINY_TEXTS))
    cmd = [sys.executable, "-m", "tinyminilm"]
    run1 = subprocess.run(cmd + ["embed", "--model", str(tiny), "-i", str(src), "-o", str(tmp_path / "o.npy")],
                          capture_output=True, text=True, timeout=120)
    assert run1.returncode == 0, run1.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), tiny_model.encode(TINY_TEXTS), atol=1e-6)
    run2 = subprocess.run(cmd + ["search", "--model", str(tiny), "-c", str(src), "--json", "-k", "1", "fox"],
                          capture_output=True, text=True, timeout=120)
    assert run2.returncode == 0, run2.stderr
    assert json.loads(run2.stdout)["hits"][0]["text"] == "fox"
    run3 = subprocess.run(cmd + ["embed", "--model", str(tiny), "-i", "-", "-o", str(tmp_path / "s.jsonl")],
                          input="hello world\nfox\n", capture_output=True, text=True, timeout=120)
    assert run3.returncode == 0, run3.stderr
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2
    run4 = subprocess.run(cmd + ["embed", "--model", str(tiny), "-i", str(tmp_path / "nope.csv")],
                          capture_output=True, text=True, timeout=120)
    assert run4.returncode == 2 and run4.stderr == f"tinyminilm: error: {tmp_path / 'nope.csv'}: no such file\n"


def test_prose_end_to_end_with_the_real_model(capsys, tmp_path, model_dir, model):
    """As a new user would: embed a prose file to .npy, search it with one of its own lines, find a duplicate."""
    lines = [line for line in PROSE.splitlines() if line.strip()]
    duplicate = lines[7].lower().rstrip(".")  # the referee line again, lowercased and without its full stop
    text = PROSE + duplicate + "\n"
    src = write(tmp_path / "prose.txt", text)
    texts = lines + [duplicate]

    code, _, err = run(capsys, "embed", "--model", model_dir, "-i", src, "-o", tmp_path / "prose.npy")
    assert code == 0, err
    emb = np.load(tmp_path / "prose.npy")
    assert emb.shape == (len(texts), 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, model.encode(texts), atol=1e-6)

    query = lines[16]  # "Version control lets a team see who changed each line and why."
    code, out, err = run(capsys, "search", "--model", model_dir, "-c", src, "--json", query)
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert hits[0]["text"] == query and hits[0]["index"] == 16 and hits[0]["score"] == pytest.approx(1, abs=1e-5)
    assert hits[1]["score"] < 0.6  # nothing else in the file is about version control

    code, out, err = run(capsys, "dedup", "--model", model_dir, "-i", src)
    assert code == 0, err
    groups = [json.loads(line) for line in out.splitlines()]
    assert [g["indices"] for g in groups] == [[7, len(texts) - 1]]
    assert groups[0]["lines"] == [8, text.count("\n")] and groups[0]["texts"] == [lines[7], duplicate]


def test_the_search_cache_names_a_hub_model_by_its_id_and_commit_without_hashing_its_files(monkeypatch, tiny):
    """A Hub commit's files never change, so its id and commit identify the vectors; a folder given by path is
    identified by its files' hashes, as before."""
    from tinyminilm import hub
    from tinyminilm.cli import search

    by_path = tinyminilm.load(tiny)
    by_id = SentenceEncoder.from_folder(tiny, source=hub.ModelSource(Path(tiny), "acme/tiny", "c" * 40))
    assert search._model_fingerprint(by_path).startswith("sha256:")

    def no_hashing(path):
        raise AssertionError(f"hashed {path}")

    monkeypatch.setattr(hub, "sha256_file", no_hashing)
    assert search._model_fingerprint(by_id) == "acme/tiny@" + "c" * 40
