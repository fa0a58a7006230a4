"""Models by Hub id: the Hugging Face cache (read with no network) and the Hub that fills it (through huggingface_hub).

The cache is huggingface_hub's, which sentence-transformers and transformers read and write too, so one copy of a
model on disk serves all of them:

    <cache>/models--<org>--<name>/refs/<branch or tag>        the commit it points at (40 hex digits)
    <cache>/models--<org>--<name>/snapshots/<commit>/<path>   the files of that commit (symlinks into blobs/)

`find` reads a revision's snapshot from it; `download` fills it, at a branch, tag or commit, with only the files
a sentence-transformers BERT model needs (`ALLOW_PATTERNS`); `get` tries the one, then the other, as
tinyminilm.hub.resolve asks for any model but the pinned default. Also here, for every fetch from the Hub (the
pinned model's too): `reachable_hub`, which checks that the Hub is not switched off (`offline_setting`) and that its
host answers (`probe_hub`, which fails in seconds where huggingface_hub would retry for half a minute). Nothing
here prints: a download is announced through `logging` (logger "tinyminilm", INFO), and huggingface_hub draws its
own progress bars only when stderr is a terminal.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from pathlib import Path
from types import ModuleType

from .errors import ArgumentError, ArgumentTypeError, ConfigError, DownloadError
from .progress import silent_bar_class, stderr_is_terminal

log = logging.getLogger("tinyminilm")

COMMIT = re.compile(r"[0-9a-f]{40}")  # a full commit hash: the one kind of revision that never moves
DEFAULT_REVISION = "main"

# What a sentence-transformers BERT model needs, as huggingface_hub's allow_patterns (fnmatch over repo paths): its
# configs, the safetensors weights, the tokenizer files (tokenizer.json is what tinyminilm reads; the others are for
# the other libraries that share the cache), and each module folder's config (1_Pooling/config.json, ...). Never
# the other weight formats (pytorch_model.bin, onnx/, openvino/ ...), which would be hundreds of MB unread.
ALLOW_PATTERNS = ("modules.json", "config.json", "config_sentence_transformers.json", "sentence_bert_config.json",
                  "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "added_tokens.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "*/config.json")
NEEDED = ("config.json", "model.safetensors", "tokenizer.json")  # and each module folder's config.json
OTHER_WEIGHTS = ("pytorch_model.bin", "model.onnx", "tf_model.h5", "flax_model.msgpack")

TIMEOUT_S = 15  # per network request; an unreachable source fails fast and the next is tried
_PROBE_S = 5  # one connection attempt to the Hub before any download
_TRUE = ("1", "true", "yes", "on")  # as huggingface_hub reads its boolean variables
_PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


# --------------------------------------------------------------------------------------------------------------
# Where the cache is, and whether the Hub may be used
# --------------------------------------------------------------------------------------------------------------

def cache_dir(cache_folder: str | os.PathLike | None = None) -> Path:
    """The Hugging Face cache folder, as huggingface_hub finds it: `cache_folder` if given, else $HF_HUB_CACHE (or
    its older name $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
    ~/.cache/huggingface/hub. The environment is read at each call. The folder may not exist."""
    if cache_folder is not None:
        where = os.fspath(cache_folder)
    else:
        where = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or ""
        if not where:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            where = os.path.join(os.environ.get("HF_HOME") or os.path.join(base, "huggingface"), "hub")
    return Path(os.path.expandvars(os.path.expanduser(where)))


def repo_dir(repo_id: str, cache_folder: str | os.PathLike | None = None) -> Path:
    """The cache's folder of a model repository: <cache>/models--<org>--<name>."""
    return cache_dir(cache_folder) / ("models--" + repo_id.replace("/", "--"))


def offline_setting() -> str | None:
    """The environment variable that switches the Hub off — HF_HUB_OFFLINE, or transformers' TRANSFORMERS_OFFLINE,
    set to 1 / true / yes / on, as huggingface_hub reads them — or None when the Hub may be used."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def endpoint() -> str:
    """The Hub's address: $HF_ENDPOINT (a mirror, or a stand-in in tests), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def probe_hub() -> None:
    """Fail within seconds, with a DownloadError, if the Hub's host cannot be reached at all.

    huggingface_hub retries a failed request five times with backoff (~25 s of "Retrying in 8s" on a host that
    reaches only a package index); one TCP connection attempt settles it first. Skipped behind a proxy, where a
    direct connection says nothing.
    """
    if any(os.environ.get(v) for v in _PROXIES):
        return
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=_PROBE_S).close()
    except OSError as e:
        raise DownloadError(f"{host}:{port} is unreachable ({e.strerror or e})") from None


def reachable_hub() -> ModuleType:
    """huggingface_hub, once the Hub may be used (`offline_setting`) and its host answers (`probe_hub`); else a
    DownloadError saying which switch is set, which host is unreachable, or that the package is missing."""
    switched_off = offline_setting()
    if switched_off:
        raise DownloadError(f"{switched_off} is set")
    probe_hub()
    try:
        import huggingface_hub
    except ImportError:
        raise DownloadError("huggingface_hub is not installed (pip install huggingface_hub)") from None
    return huggingface_hub


def check_revision(revision: object) -> str:
    """`revision` as a branch, tag or commit name (default "main"); an ArgumentError for one that would lead out
    of the cache's refs/ folder."""
    if revision is None:
        return DEFAULT_REVISION
    if not isinstance(revision, str):
        raise ArgumentTypeError(f"revision must be a branch, tag or commit hash (str) or None, got "
                                f"{type(revision).__name__}")
    if not revision or revision.startswith("/") or ".." in revision.split("/"):
        raise ArgumentError(f"revision={revision!r} is not a branch, tag or commit name")
    return revision


# --------------------------------------------------------------------------------------------------------------
# Reading the cache
# --------------------------------------------------------------------------------------------------------------

class NotCached(Exception):
    """Why the cache holds no whole model for a revision (the message), and whether what it holds has its
    weights only in another format than model.safetensors (`other_weights`: the file names)."""

    def __init__(self, message: str, other_weights: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.other_weights = other_weights


def missing_files(folder: Path) -> list[str]:
    """The files a model needs that `folder` lacks: config.json, model.safetensors, tokenizer.json, and the
    config.json of each module folder modules.json names (1_Pooling, ...), but Normalize's, which
    sentence-transformers before version 6 saved as no file at all. An unreadable modules.json adds nothing here:
    loading the folder names what is wrong with it."""
    from .config import read_json

    missing = [name for name in NEEDED if not (folder / name).is_file()]
    try:
        modules = read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    except ConfigError:
        modules = []
    for module in modules if isinstance(modules, list) else []:
        path = module.get("path") if isinstance(module, dict) else None
        if isinstance(path, str) and path.strip("/") and "Normalize" not in str(module.get("type")):
            name = f"{path.strip('/')}/config.json"
            if not (folder / name).is_file():
                missing.append(name)
    return missing


def find(repo_id: str, revision: str | None = None,
         cache_folder: str | os.PathLike | None = None) -> tuple[Path, str]:
    """(snapshot folder, commit) of `repo_id` at `revision` in the cache, read with no network: a commit hash names
    snapshots/<commit>/; a branch or tag (default "main") names the commit in refs/<revision>. Raises NotCached,
    saying why, when there is no such snapshot or it lacks a file the model needs (`missing_files`)."""
    revision = check_revision(revision)
    repo = repo_dir(repo_id, cache_folder)
    if not repo.is_dir():
        raise NotCached(f"it has no folder {repo.name}")
    if COMMIT.fullmatch(revision):
        commit = revision
    else:
        try:
            commit = (repo / "refs" / revision).read_text(encoding="utf-8").strip()
        except OSError:
            raise NotCached(f"{repo.name} has no refs/{revision}") from None
        if not COMMIT.fullmatch(commit):
            raise NotCached(f"{repo.name}/refs/{revision} holds {commit[:60]!r}, not a commit hash")
    folder = repo / "snapshots" / commit
    if not folder.is_dir():
        via = "" if commit == revision else f"refs/{revision} points at commit {commit}, but "
        raise NotCached(f"{via}{repo.name} has no snapshot of commit {commit}")
    missing = missing_files(folder)
    if missing:
        other = tuple(name for name in OTHER_WEIGHTS if (folder / name).is_file())
        raise NotCached(f"its snapshot of commit {commit} lacks {', '.join(missing)}",
                        other if "model.safetensors" in missing else ())
    return folder, commit


def only_other_weights(repo_id: str, where: str, other: tuple[str, ...] | list[str]) -> ConfigError:
    """The refusal of a model whose weights are not in model.safetensors: `where` it was looked at, which files
    it has instead, and what to do."""
    return ConfigError(f"{repo_id} {where} has its weights only in {', '.join(other)}, not in model.safetensors: "
                       "tinyminilm reads only safetensors weights (a pickle file can run code when loaded). Pick a "
                       "revision that has model.safetensors, or convert the weights and load the folder")


# --------------------------------------------------------------------------------------------------------------
# Filling it from the Hub, and the one call that does both
# --------------------------------------------------------------------------------------------------------------

def download(repo_id: str, revision: str | None = None,
             cache_folder: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Fetch `repo_id` at `revision` (a branch, tag or commit; default "main") from the Hub into the cache, only
    the files of ALLOW_PATTERNS, through huggingface_hub's snapshot_download (which records refs/<revision>, as
    sentence-transformers' own downloads do); return (snapshot folder, commit). Files already there are not fetched
    again.

    Raises DownloadError when the Hub is switched off or unreachable, or has no such repository or revision (the
    message says which); ConfigError when the repository lacks a file the model needs at that revision — weights
    only in pytorch_model.bin among them — before anything is fetched where the Hub's file list shows it.
    """
    revision = check_revision(revision)
    huggingface_hub = reachable_hub()
    url, cache = endpoint(), cache_dir(cache_folder)
    try:
        info = huggingface_hub.HfApi(endpoint=url).model_info(repo_id, revision=revision, files_metadata=True,
                                                              timeout=TIMEOUT_S)
    except Exception as e:  # huggingface_hub raises many types; the message says which case this is
        raise DownloadError(_hub_failure(e, repo_id, revision, url)) from None
    sizes = {s.rfilename: s.size or 0 for s in info.siblings or ()}
    wanted = [name for name in sizes if any(fnmatch.fnmatch(name, p) for p in ALLOW_PATTERNS)]
    where = f"at revision {revision} (commit {info.sha}) on the Hub"
    if "model.safetensors" not in sizes and any(name in sizes for name in OTHER_WEIGHTS):
        raise only_other_weights(repo_id, where, [name for name in OTHER_WEIGHTS if name in sizes])
    absent = [name for name in NEEDED if name not in sizes]
    if absent:
        raise ConfigError(f"{repo_id} {where} has no {', '.join(absent)}: it is not a sentence-transformers "
                          "model tinyminilm can run (it needs config.json, model.safetensors and tokenizer.json)")
    log.info("downloading %s at revision %s (commit %s): %d files, %.1f MB, from the Hugging Face Hub (%s/%s) "
             "into %s", repo_id, revision, (info.sha or "?")[:12], len(wanted),
             sum(sizes[n] for n in wanted) / 1e6, url, repo_id, cache)
    try:
        folder = Path(huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=list(ALLOW_PATTERNS), cache_dir=str(cache), endpoint=url,
            etag_timeout=TIMEOUT_S, tqdm_class=None if stderr_is_terminal() else silent_bar_class()))
    except Exception as e:
        raise DownloadError(_hub_failure(e, repo_id, revision, url)) from None
    missing = missing_files(folder)
    if missing:
        raise ConfigError(f"{repo_id} at revision {revision} (commit {folder.name}) has no {', '.join(missing)} on "
                          "the Hub, which its modules.json names; it is not a model tinyminilm can run")
    log.info("%s at commit %s is in %s", repo_id, folder.name, folder)
    return folder, folder.name


def _hub_failure(e: Exception, repo_id: str, revision: str, url: str) -> str:
    """What went wrong asking the Hub for `repo_id` at `revision`, in one line."""
    kinds = {c.__name__ for c in type(e).__mro__}
    if "RevisionNotFoundError" in kinds:
        return f"{repo_id} has no revision {revision!r} on the Hub ({url}): give a branch, tag or commit it has"
    if "RepositoryNotFoundError" in kinds or "GatedRepoError" in kinds:
        return (f"the Hub ({url}) has no model {repo_id} that this machine may read: check the id, or log in for a "
                "private or gated model (`hf auth login`, or HF_TOKEN)")
    return failure_line(e)


def failure_line(e: Exception) -> str:
    """One line for an error huggingface_hub raised: its type and the first line of its message."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"


def get(repo_id: str, revision: str | None = None, cache_folder: str | os.PathLike | None = None,
        local_files_only: bool = False) -> tuple[Path, str]:
    """(snapshot folder, commit) of `repo_id` at `revision`: from the cache if it holds the whole model (`find`),
    else from the Hub into the cache (`download`), unless local_files_only or HF_HUB_OFFLINE forbid it.

    Raises DownloadError when neither gives the model, saying where it looked, why, and how to fetch it;
    ConfigError when the model has its weights only in pytorch_model.bin (or another format), or lacks a file
    it needs on the Hub.
    """
    revision = check_revision(revision)
    try:
        return find(repo_id, revision, cache_folder)
    except NotCached as e:
        miss = e
    cache = cache_dir(cache_folder)
    switched_off = "local_files_only=True" if local_files_only else offline_setting()
    if switched_off and miss.other_weights:
        raise only_other_weights(repo_id, f"at revision {revision} in the Hugging Face cache {cache}",
                                 miss.other_weights)
    head = f"{repo_id} (revision {revision}) is not in the Hugging Face cache {cache}: {miss}"
    at = "" if revision == DEFAULT_REVISION else f" --revision {revision}"
    fetch = f"`tinyminilm download {repo_id}{at}` (or huggingface_hub's `hf download {repo_id}{at}`)"
    if switched_off:
        undo = "pass local_files_only=False" if local_files_only else f"unset {switched_off}"
        raise DownloadError(f"{head}. {switched_off} is set, so it was not downloaded: fetch it with {fetch} on a "
                            f"machine with access to the Hub (into this cache), or {undo}")
    try:
        return download(repo_id, revision, cache_folder)
    except DownloadError as e:
        raise DownloadError(f"{head}; and the Hub could not provide it: {e}. Fetch it with {fetch} where the Hub "
                            "is reachable (into this cache), or copy that model's folder here and pass its path"
                            ) from None


__all__ = ["ALLOW_PATTERNS", "NEEDED", "cache_dir", "repo_dir", "offline_setting", "endpoint", "probe_hub",
           "reachable_hub", "failure_line", "check_revision", "NotCached", "missing_files", "find", "download", "get"]
