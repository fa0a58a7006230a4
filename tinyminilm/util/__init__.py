"""NumPy twins of sentence_transformers.util: similarity, search, mining, quantization.

Each function takes what its sentence-transformers namesake takes — NumPy arrays, lists of vectors, anything
`np.asarray` reads — and returns NumPy arrays (or the same Python lists and dicts) instead of torch tensors.
The math is float32 throughout; the chunking follows sentence-transformers', so that searching a 1M x 384 corpus
never builds a 1M x 1M matrix.

One deliberate difference, everywhere a top-k is taken: among *exactly equal* scores, tinyminilm ranks the lower
index first. sentence-transformers leaves that order to torch.topk and heapq internals (it varies with the corpus
size); the set of ids and every score agree either way.

One module per job, all names available here as `tinyminilm.util.NAME`:

- `similarity.py`    cos_sim, dot_score, euclidean_sim, manhattan_sim, pairwise_*, SIMILARITY_FUNCTIONS,
                     normalize_embeddings
- `retrieval.py`     semantic_search, paraphrase_mining(_embeddings), community_detection, and their top-k
- `quantization.py`  quantize_embeddings, PRECISIONS, truncate_embeddings
- `_arrays.py`       the input checks they share
"""

from __future__ import annotations

from .quantization import PRECISIONS, check_precision, quantize_embeddings, truncate_embeddings
from .retrieval import community_detection, paraphrase_mining, paraphrase_mining_embeddings, semantic_search
from .similarity import (PAIRWISE_SIMILARITY_FUNCTIONS, SIMILARITY_FN_NAMES, SIMILARITY_FUNCTIONS,
                         check_similarity_fn_name, cos_sim, dot_score, euclidean_sim, manhattan_sim,
                         normalize_embeddings, pairwise_cos_sim, pairwise_dot_score, pairwise_euclidean_sim,
                         pairwise_manhattan_sim, pytorch_cos_sim)

__all__ = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim", "pairwise_dot_score",
           "pairwise_euclidean_sim", "pairwise_manhattan_sim", "pytorch_cos_sim", "SIMILARITY_FN_NAMES",
           "SIMILARITY_FUNCTIONS", "PAIRWISE_SIMILARITY_FUNCTIONS", "check_similarity_fn_name",
           "normalize_embeddings", "semantic_search", "paraphrase_mining", "paraphrase_mining_embeddings",
           "community_detection", "PRECISIONS", "check_precision", "quantize_embeddings", "truncate_embeddings"]
