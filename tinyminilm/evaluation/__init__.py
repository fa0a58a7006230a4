"""sentence-transformers' evaluators for a tinyminilm model, in NumPy: does the model work on *your* data?

    from tinyminilm.evaluation import InformationRetrievalEvaluator, load_beir
    queries, corpus, relevant_docs = load_beir("scifact")          # a BEIR-layout folder
    results = InformationRetrievalEvaluator(queries, corpus, relevant_docs, name="scifact")(model)
    results["scifact_cosine_ndcg@10"]

Each evaluator takes sentence-transformers 6.2's arguments and returns its result keys (see each class):
  InformationRetrievalEvaluator    retrieval: accuracy, precision, recall, MRR, nDCG, MAP at k   (information_retrieval)
  EmbeddingSimilarityEvaluator     similarity: Pearson and Spearman against gold scores          (embedding_similarity)
  CrossEncoderRerankingEvaluator   reranking with a cross-encoder: MAP, MRR@k, nDCG@k            (reranking)
The metrics themselves are plain NumPy functions in tinyminilm.evaluation.metrics; load_beir reads a BEIR folder;
tinyminilm.evaluation.report holds what `tinyminilm evaluate` shows (a retrieval run, reranked, its failures).
"""

from __future__ import annotations

from .beir import load_beir
from .embedding_similarity import EmbeddingSimilarityEvaluator
from .evaluator import Evaluator
from .information_retrieval import InformationRetrievalEvaluator
from .reranking import CrossEncoderRerankingEvaluator

__all__ = ["CrossEncoderRerankingEvaluator", "EmbeddingSimilarityEvaluator", "Evaluator",
           "InformationRetrievalEvaluator", "load_beir"]
