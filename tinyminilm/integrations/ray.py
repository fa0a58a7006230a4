"""Embed a corpus with Ray Data: the model loaded once per actor, N actors on one machine or a cluster.

    import ray
    from tinyminilm.integrations.ray import embed_corpus, read_embeddings

    ray.init()                                   # a local instance; ray.init("ray://HEAD:10001") for a cluster
    embed_corpus("corpus.jsonl", "embeddings/", num_actors=2)     # JSONL or Parquet in, a Parquet folder out
    ids, vectors = read_embeddings("embeddings/")                # int64 [n], float32 [n, 384]

or, as one step of a pipeline of your own (recipes in docs/ray.md):

    folder = str(tinyminilm.hub.resolve("all-MiniLM-L6-v2").folder)  # resolved once, on the driver
    ds = ds.map_batches(TinyMiniLMEmbedder, fn_constructor_kwargs={"model": folder, "blas_threads": 1},
                        batch_size=256, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)

Ray is imported only inside the functions that need it (`pip install 'tinyminilm[ray]'`); `TinyMiniLMEmbedder` is a
plain callable that Ray does not need to be installed to build or call.

BLAS threads. Each actor runs NumPy matrix products on a BLAS thread pool. With N actors on a node of C cores, use
C / N threads per actor (and reserve as many CPUs for it, `num_cpus`, so Ray places no more actors on a node than it
has cores): more would make the actors' threads fight over the cores. Ray already sets OMP_NUM_THREADS to an
actor's `num_cpus` when that variable is unset, but an OPENBLAS_NUM_THREADS or MKL_NUM_THREADS inherited from the
environment wins over it, and environment variables only count if set before the BLAS library is loaded. So
`blas_threads` sets the limit inside the running actor (`tinyminilm.blas.limit`), which resizes the pool NumPy's
BLAS already has (and any other BLAS library's) — it works in any pipeline, with no runtime_env and no extra
worker processes.
The same number caps the batches `encode` runs at once on threads of its own (`model.threads`, which otherwise
defaults to every core of the node).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import blas, hub
from ..errors import ArgumentError, ConfigError, CorpusError, check_int, first_bad_text
from ._common import require

_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _import_ray():
    require("ray.data", "ray", "tinyminilm.integrations.ray")  # an ImportError naming the extra when missing
    import ray

    return ray


def _actor_cpus() -> int | None:
    """The CPUs Ray reserved for the current actor or task (at least 1), or None outside a Ray worker."""
    ray = sys.modules.get("ray")  # never import Ray here: a plain process calling the embedder does not need it
    if ray is None or not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # the driver, or an API that changed: no reservation to follow
        return None
    return max(1, int(cpus)) if cpus else None


class TinyMiniLMEmbedder:
    """A callable class for `ray.data.Dataset.map_batches`: a text column in, an embedding column out.

    Ray builds one instance per actor, so the model is loaded once per actor, in `__init__`, and then serves every
    batch the actor is given. Batches are NumPy batches (`batch_format="numpy"`): dict of column name -> array.

    model: the path of a model folder that exists on every node (resolve it on the driver with
    `tinyminilm.hub.resolve(...).folder`, so workers never download), or a name `tinyminilm.load` takes — None or
    "all-MiniLM-L6-v2" for the default model, a Hub id at `revision` for any other — whose files are already on
    this node (resolved with local_files_only=True: nothing is downloaded here; a Hub id is read from this node's
    Hugging Face cache).
    text_column: the input column of str; embedding_column: the output column, float32 [B, dim].
    keep_columns: the input columns copied to the output (e.g. ["id"]); None keeps them all.
    encode_batch_size: texts per forward pass inside one Ray batch (the `batch_size` of `encode`); the texts of a
    Ray batch are sorted by length before being cut into forward passes, so a larger Ray batch wastes less padding.
    blas_threads: the threads this actor computes with (see the module docstring): BLAS threads, and the batches
    `encode` runs at once where the encoder has that setting (`model.threads`). None follows the CPUs Ray reserved
    for the actor (`num_cpus`; Ray sets OMP_NUM_THREADS to it).
    """

    def __init__(self, model: str | Path | None = None, *, revision: str | None = None, text_column: str = "text",
                 embedding_column: str = "embedding", keep_columns: Sequence[str] | None = None,
                 encode_batch_size: int = 32, blas_threads: int | None = None) -> None:
        import tinyminilm

        if blas_threads is not None:
            blas.limit(check_int(blas_threads, "blas_threads"))
        self.encode_batch_size = check_int(encode_batch_size, "encode_batch_size")
        self.text_column = text_column
        self.embedding_column = embedding_column
        self.keep_columns = None if keep_columns is None else list(keep_columns)
        hub.check_model(model)
        if model is not None and hub.hub_id(model) is None and not Path(model).expanduser().is_dir():
            raise ConfigError(
                f"model folder {str(model)!r} does not exist on this node ({socket.gethostname()}); every Ray "
                "node must see the model at the same path: use a shared filesystem, or run `tinyminilm download "
                "--dir PATH` on each node and pass that PATH (see docs/ray.md)")
        self.model = tinyminilm.load(model, revision=revision, local_files_only=True)
        threads = blas_threads if blas_threads is not None else _actor_cpus()
        if threads is not None and hasattr(self.model, "threads"):
            # An encoder that runs several batches at once (model.threads, default all cores) must stay within this
            # actor's share too, or N actors would each start one thread per core of the node.
            self.model.threads = threads

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed one batch: {text_column: object/str array [B], ...} -> {kept columns..., embedding_column: [B, dim]}.

        The embeddings are float32 [B, dim], rows in the order of the batch, the same vectors `model.encode` gives.
        """
        columns = list(batch)
        for name in [self.text_column] + (self.keep_columns or []):
            if name not in batch:
                raise CorpusError(f"the batch has no column {name!r} (its columns: {', '.join(map(repr, columns))}); "
                                  "pass the name of the column that holds it (text_column= / id_column=)")
        texts = batch[self.text_column].tolist()
        found = first_bad_text(texts)  # (row, None) for a value that is not a str
        if found is not None and found[1] is None:
            i, t = found[0], texts[found[0]]
            where = ""
            if self.keep_columns:
                key = batch[self.keep_columns[0]][i]
                where = f", {self.keep_columns[0]}={key.item() if isinstance(key, np.generic) else key!r}"
            raise CorpusError(f"column {self.text_column!r} holds {t!r} ({type(t).__name__}) in row {i} of a "
                              f"batch{where}; every text must be a str: fill or drop the missing ones first")
        vectors = self.model.encode(texts, batch_size=self.encode_batch_size)  # float32 [B, dim]
        keep = columns if self.keep_columns is None else self.keep_columns
        out = {name: batch[name] for name in keep if name != self.embedding_column}
        out[self.embedding_column] = vectors
        return out


def _input_format(path: str, given: str | None) -> str:
    if given is not None:
        if given not in ("jsonl", "parquet"):
            raise ArgumentError(f"input_format must be 'jsonl' or 'parquet', got {given!r}")
        return given
    names = [path.lower()]
    if "://" not in path and Path(path).expanduser().is_dir():
        names = [p.name.lower() for p in _local_files(path)]
    if names and all(n.endswith(_PARQUET_SUFFIXES) for n in names):
        return "parquet"
    if names and all(n.endswith(_JSON_SUFFIXES) for n in names):
        return "jsonl"
    raise CorpusError(f"{path}: cannot tell whether this is JSONL or Parquet from its name"
                      + (" (a folder must hold files of one kind)" if len(names) != 1 else "")
                      + "; name it .jsonl or .parquet, or pass input_format='jsonl' / 'parquet'")


def _local_files(path: str) -> list[Path]:
    if "://" in path:
        return []
    local = Path(path).expanduser()
    if local.is_dir():
        return sorted(p for p in local.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    return [local] if local.is_file() else []


def _check_columns(path: str, fmt: str, needed: dict[str, str]) -> None:
    """Check the first local file's columns before any Ray work starts, so a wrong name fails fast and clearly."""
    files = _local_files(path)
    if "://" not in path and not files:
        raise CorpusError(f"{path}: no such file, or a folder with no files in it")
    if not files or files[0].name.lower().endswith(".zst"):
        return  # remote or zstd: left to Ray's reader
    if fmt == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(files[0]).names
    else:
        import gzip
        import json

        opener = gzip.open if files[0].name.lower().endswith(".gz") else open
        with opener(files[0], "rt", encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "{}")
        try:
            names = list(json.loads(first))
        except (ValueError, TypeError):
            raise CorpusError(f"{files[0]}: the first line is not a JSON object; JSONL needs one object per line, "
                              'e.g. {"id": 1, "text": "..."}') from None
    for arg, name in needed.items():
        if name not in names:
            raise CorpusError(f"{files[0]}: no column {name!r} (its columns: {', '.join(map(repr, names))}); "
                              f"pass {arg}= the name of the column that holds it")


def _check_output(path: str) -> None:
    if "://" in path:  # a remote filesystem (s3://, gs://, ...): Ray's writer handles it as it is
        return
    local = Path(path).expanduser()
    if local.exists() and (not local.is_dir() or any(local.iterdir())):
        # Ray appends new files to a folder that exists: a second run would duplicate every row.
        raise CorpusError(f"{path}: the output path already exists and is not an empty folder; delete it or choose "
                          "another (embed_corpus writes a folder of Parquet files and never appends)")


def default_blas_threads(num_actors: int) -> int:
    """Threads per actor that fill the cluster without oversubscribing a node: cores / actors, at most one node's.

    Reads the CPUs of the connected Ray cluster (`ray.nodes()`); starts a local instance if none is connected.
    """
    ray = _import_ray()

    num_actors = check_int(num_actors, "num_actors")
    if not ray.is_initialized():
        ray.init()
    cpus = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    cpus = [c for c in cpus if c > 0] or [1]
    return max(1, int(min(min(cpus), sum(cpus) // num_actors)))


def embed_corpus(input_path: str | Path, output_path: str | Path, *, text_column: str = "text", id_column: str = "id",
                 num_actors: int = 1, batch_size: int = 256, encode_batch_size: int = 32,
                 blas_threads: int | None = None, model: str | Path | None = None, revision: str | None = None,
                 input_format: str | None = None) -> None:
    """Embed a JSONL or Parquet corpus into a folder of Parquet files, with `num_actors` Ray actors.

    input_path: a .jsonl / .parquet file, a folder of them, or a remote URI Ray can read (s3://...); JSONL is one
    JSON object per line. Each row needs `id_column` (any type, unique) and `text_column` (str).
    output_path: a folder that does not exist yet (or is empty); it receives Parquet files with two columns,
    `id_column` and "embedding" (float32 vectors of length dim, as a list column). Rows come in no particular
    order: match them by id. `read_embeddings` reads them back as arrays.
    num_actors: actors, each holding one copy of the model (~90 MB); batch_size: rows handed to an actor per call.
    blas_threads: BLAS threads per actor, also the CPUs Ray reserves for it; default cores / actors
    (`default_blas_threads`). model: a local model folder, or None / "all-MiniLM-L6-v2" for the default model, or
    a Hub id at `revision` (a branch, tag or commit), fetched once here on the driver if this machine lacks it —
    workers only read the folder, which must exist at the same path on every node (a shared Hugging Face cache, say).

    Uses the connected Ray instance, or starts a local one. Reads and writes reserve no CPU: they are light next
    to the model, and a task waiting for a CPU that the actors hold would wait forever. When the actors take every
    CPU of the cluster, the id and text columns are read in full (`materialize`, into Ray's object store, which
    spills to disk) before the actors start; otherwise reading, embedding and writing stream side by side.
    """
    ray = _import_ray()

    num_actors = check_int(num_actors, "num_actors")
    batch_size = check_int(batch_size, "batch_size")
    src, dest = str(input_path), str(output_path)
    fmt = _input_format(src, input_format)
    _check_columns(src, fmt, {"text_column": text_column, "id_column": id_column})
    _check_output(dest)
    folder = hub.resolve(model, revision=revision).folder  # on the driver: a model is fetched here, once
    if not ray.is_initialized():
        ray.init()
    threads = default_blas_threads(num_actors) if blas_threads is None else check_int(blas_threads, "blas_threads")
    if fmt == "parquet":
        ds = ray.data.read_parquet(src, num_cpus=0)
    else:
        ds = ray.data.read_json(src, num_cpus=0)  # Arrow's reader: one JSON object per line
    ds = ds.select_columns([id_column, text_column], num_cpus=0)  # other columns are not shipped to the actors
    if ray.cluster_resources().get("CPU", 0) - num_actors * threads < 1:
        # The actors will hold every CPU, and some of Ray Data's read steps (e.g. listing Parquet files) ask for a
        # whole CPU whatever num_cpus the read is given: they would wait forever. So read everything first.
        ds = ds.materialize()
    ds = ds.map_batches(
        TinyMiniLMEmbedder,
        fn_constructor_kwargs={"model": str(folder), "text_column": text_column, "keep_columns": [id_column],
                               "encode_batch_size": encode_batch_size, "blas_threads": threads},
        batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=threads)
    ds.write_parquet(dest, ray_remote_args={"num_cpus": 0})


def read_embeddings(path: str | Path, *, id_column: str = "id",
                    embedding_column: str = "embedding") -> tuple[np.ndarray, np.ndarray]:
    """Read what `embed_corpus` wrote: (ids [n], float32 vectors [n, dim]), rows in file order. Needs only pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(str(path), columns=[id_column, embedding_column])
    column = table.column(embedding_column)
    chunks = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in column.chunks]  # Ray's tensor type
    if not chunks:
        return table.column(id_column).to_numpy(), np.zeros((0, 0), dtype=np.float32)
    vectors = pa.concat_arrays(chunks)
    lengths = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths.min() != lengths.max()):
        raise CorpusError(f"{path}: column {embedding_column!r} holds vectors of different lengths "
                          f"({lengths.min()} to {lengths.max()}); it was not written by embed_corpus")
    dim = int(lengths[0]) if len(lengths) else 0
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return table.column(id_column).to_numpy(), flat.reshape(len(vectors), dim)


__all__ = ["TinyMiniLMEmbedder", "embed_corpus", "read_embeddings", "default_blas_threads", "CorpusError"]
