"""What the command line says when something goes wrong, and what the README says about it, are true.

Each case is one a new user met (issue 13): a path through a file, a folder they cannot write, an interrupt
while rows were being printed, options the README promised, hashes `info` was said to show, a CSV quote that
never closes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tiny_bert
from permissions import require_root, run_as, shared_folder
from test_cli import _explode_on_call
from tinyminilm import hub
from tinyminilm.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_bert.make_folder(tmp_path_factory.mktemp("tiny") / "t", "pooling_mode_mean_tokens", True)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_output_path_through_a_file_says_it_is_a_file(capsys, tmp_path, tiny):
    (tmp_path / "notes.txt").write_text("hello\n")
    for target in ("notes.txt/out.npy", "notes.txt/deeper/out.npy"):
        code, _, err = run(capsys, "embed", "--model", tiny, "-o", tmp_path / target, "hello")
        assert code == 2
        assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in err and "does not exist" not in err, err
    code, _, err = run(capsys, "embed", "--model", tiny, "-o", tmp_path / "missing" / "out.npy", "hello")
    assert code == 2 and f"the folder {tmp_path / 'missing'} does not exist" in err  # the true case still says so


def test_an_unwritable_target_names_the_users_path_not_a_temporary_file(tiny):
    user = require_root()
    with shared_folder() as base:
        model = base / "tiny"
        tiny_bert.make_folder(model, "pooling_mode_mean_tokens", True)
        for path in model.rglob("*"):  # safetensors writes 0600; this test is about the output, not the model
            path.chmod(0o755 if path.is_dir() else 0o644)
        out = base / "out.npy"  # base is root's, 0755: the other user cannot create files in it
        run = run_as(user, "sys.exit(tinyminilm.cli.main(sys.argv[1:]))",
                     "embed", "--model", str(model), "-o", str(out), "hello")
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"tinyminilm: error: {out}: Permission denied"), run.stderr
    assert ".tmp" not in run.stderr and run.stderr.count("\n") == 1


def test_an_interrupt_while_printing_rows_does_not_claim_nothing_was_left(capsys, monkeypatch, tmp_path, tiny):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"text number {i}" for i in range(40)))
    _explode_on_call(monkeypatch, 3, KeyboardInterrupt())
    code, out, err = run(capsys, "embed", "--model", tiny, "-i", src, "--batch-size", 1)
    assert code == 130
    assert len(out.splitlines()) == 16  # two chunks of 8 rows were printed before the interrupt
    assert "no partial output file" not in err and "only part of the output" in err, err
    monkeypatch.undo()
    _explode_on_call(monkeypatch, 3, KeyboardInterrupt())
    code, out, err = run(capsys, "embed", "--model", tiny, "-i", src, "--batch-size", 1, "-o", tmp_path / "o.npy")
    assert code == 130 and out == "" and "no partial output file is left" in err  # a file output: true
    assert not (tmp_path / "o.npy").exists()


def _options(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {s for a in sub.choices[command]._actions for s in a.option_strings}


@pytest.mark.parametrize("argv,message", [
    (["embed", "--batch-size", "0", "x"], "argument --batch-size: must be a positive integer, got 0"),
    (["search", "q", "--corpus", "c.txt", "--top-k", "x"], "argument --top-k/-k: must be a positive integer, got 'x'"),
    (["embed", "--truncate-dim", "1.5", "x"], "argument --truncate-dim: must be a positive integer, got '1.5'"),
    (["serve", "--port", "-1"], "argument --port: must be a positive integer, got -1"),
    (["explain", "x", "--svg-max-tokens", "0"], "argument --svg-max-tokens: must be a positive integer, got 0"),
])
def test_every_count_option_is_parsed_by_the_one_integer_check(capsys, argv, message):
    """The command line's integers are errors.check_int's (its words), for every count option alike."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.rstrip().endswith(f"error: {message}"), err


def test_readme_names_exactly_the_commands_that_take_model_and_batch_size():
    commands = sorted(next(a for a in build_parser()._actions if a.dest == "command").choices)
    text = " ".join(README.read_text(encoding="utf-8").split())
    for option in ("--model", "--batch-size"):
        found = re.search(rf"`{option}[^`]*`[^`;]*? is taken by ((?:`[a-z]+`(?:, | and )?)+)", text)
        assert found, f"the README does not say which commands take {option}"
        claimed = set(re.findall(r"`([a-z]+)`", found.group(1)))
        assert claimed == {c for c in commands if option in _options(c)}, option


def test_info_shows_each_files_sha256(capsys, model_dir):
    code, out, err = run(capsys, "info", "--model", model_dir)
    assert code == 0, err
    for name, digest in hub.MANIFEST.items():
        assert re.search(rf"^  ok +{digest}  {re.escape(name)}$", out, re.M), (name, out)
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert "# model folder, SHA-256s, dimension" in readme  # what the README promises, now shown


@pytest.mark.parametrize("data,line", [
    (b'text\nfirst\n"second, with a quote that never closes\nthird\nfourth\n', 3),
    (b'text\n"never closed\n', 2),
    (b'"text\nfirst\n', 1),
])
def test_a_csv_quote_that_never_closes_is_refused_naming_the_file_and_line(capsys, tmp_path, tiny, data, line):
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    code, out, err = run(capsys, "embed", "--model", tiny, "-i", src)
    assert code == 2 and out == ""
    assert err.startswith(f"tinyminilm: error: {src}:{line}: malformed CSV: the quote opened in the row starting on "
                          f"line {line} is never closed"), err


def test_a_csv_with_text_after_a_closing_quote_is_refused(capsys, tmp_path, tiny):
    src = tmp_path / "in.csv"
    src.write_bytes(b'text\nfine\n"quoted"tail\n')
    code, _, err = run(capsys, "embed", "--model", tiny, "-i", src)
    assert code == 2 and f"{src}:3: malformed CSV" in err, err


NO_KEY_WARNING = ("listening on 0.0.0.0 with no API key: anyone who can reach this address can use the server "
                  "(set --api-key or TINYMINILM_API_KEY)")


@pytest.fixture
def serve_without_listening(monkeypatch):
    """`tinyminilm serve` up to uvicorn's run, which returns at once: no socket, no event loop."""
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    monkeypatch.delenv("TINYMINILM_API_KEY", raising=False)


def test_serve_warns_on_stderr_about_a_public_address_without_an_api_key(capsys, tiny, serve_without_listening):
    code, out, err = run(capsys, "serve", "--host", "0.0.0.0", "--model", tiny)
    assert code == 1 and out == ""  # 1: the server never started (uvicorn's run was replaced)
    assert err == f"tinyminilm serve: warning: {NO_KEY_WARNING}\n"
    code, _, err = run(capsys, "serve", "--host", "0.0.0.0", "--api-key", "k", "--model", tiny)
    assert code == 1 and err == ""


def test_the_server_logs_its_warning_and_does_not_print_it(capsys, caplog, tiny, serve_without_listening):
    from tinyminilm.serve import server

    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--model", str(tiny)])
    with caplog.at_level("WARNING", logger="tinyminilm.serve"):
        assert server.run(args) == 1
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("tinyminilm.serve.server", "WARNING", NO_KEY_WARNING)]
    assert capsys.readouterr() == ("", "")  # library code: the record is the caller's to show
