"""The evaluation golden cases: scripts/make_golden_eval.py runs them through sentence-transformers' evaluators,
tests/test_evaluation.py through tinyminilm.evaluation's. One copy of the data, imported by both.

The data is built to reach the edge cases of each metric:
- retrieval (TEXT_*): several relevant documents per query; documents with identical text under two ids, one of
  them relevant and the other not, whose ids sort against their insertion order ("d20" < "d6", "D31" < "d31"), so
  the tie rule (-score, corpus_id) decides a relevant document's rank; queries with no relevant document (absent
  from the qrels, or an empty set); a qrels query that is not a query; a relevant id that is not in the corpus.
- retrieval on preset vectors (FIXED_*): a stand-in model returns small-integer vectors, so dot scores are exact
  and many documents tie, across corpus chunks and at each chunk's top-k cut.
- similarity (STS_*): gold scores with ties, a pair repeated (a tie in the predicted scores too).
- reranking (RERANK_*): a stand-in cross-encoder reads its scores from a table with ties inside the relevant, inside
  the irrelevant and across both groups, and at the at_k cut; then (CROSS_RERANK_*) a real cross-encoder with
  random weights scores the retrieval data.
"""

from __future__ import annotations

import hashlib
import json

# --------------------------------------------------------------------------------------------------------------
# Retrieval on text, with the real model
# --------------------------------------------------------------------------------------------------------------

TEXT_QUERIES = {
    "q1": "how do I bake sourdough bread at home",
    "q2": "what causes the phases of the moon",
    "q3": "how to reverse a list in python",
    "q4": "symptoms of iron deficiency",
    "q5": "cheap flights to Lisbon in winter",
    "q6": "how does compound interest work",
    "q7": "best way to learn guitar chords",
    "q8": "why do cats purr",
    "q9": "how to fix a flat bicycle tire",
    "q10": "what is a black hole",
    "q11": "how to sort a dictionary by value in python",
    "q12": "healthy breakfast ideas for kids",
    "q_none": "how tall is the eiffel tower",
    "q_empty": "tips for growing tomatoes",
}

_MOON = "The Moon's phases come from how much of its sunlit half we see as it orbits the Earth each month."
# Insertion order keeps each pair of identical texts inside one chunk of 7 and of 10 (see TEXT_CASES).
TEXT_CORPUS = {
    "d1": "Mix flour, water, salt and an active starter, let the dough rise overnight, then bake it in a hot "
          "Dutch oven for a crusty sourdough loaf.",
    "d2": "Feed a sourdough starter daily with equal weights of flour and water to keep the yeast active.",
    "d3": _MOON,
    "d11": _MOON,
    "d4": "A new moon happens when the Moon sits between the Earth and the Sun, so its lit side faces away.",
    "d6": "The reversed() built-in walks a Python list backwards without copying it.",
    "d20": "The reversed() built-in walks a Python list backwards without copying it.",
    "d5": "In Python, my_list.reverse() reverses a list in place, and my_list[::-1] returns a reversed copy.",
    "d7": "Tiredness, pale skin, shortness of breath and cold hands are common signs of low iron.",
    "d8": "Budget airlines fly to Lisbon from most European capitals, and winter fares are often lowest.",
    "d9": "Book Lisbon flights for January or February to find the cheapest tickets of the year.",
    "d10": "Compound interest adds each period's interest to the principal, so later interest grows on it too.",
    "d12": "With 5% compounded yearly, 1000 dollars becomes 1050 after one year and 1102.50 after two.",
    "d13": "The rule of 72 estimates how many years compound growth takes to double your money.",
    "d14": "Bake bread at 230 degrees Celsius; steam in the first minutes helps the crust expand.",
    "d15": "Start with open chords like G, C, D and E minor, and practise switching between them slowly.",
    "d16": "Cats purr when content, but also when stressed or hurt, as the vibration may soothe them.",
    "d17": "Purring is made by the larynx muscles twitching as the cat breathes in and out.",
    "d18": "Remove the wheel, find the puncture, patch the inner tube or replace it, then reinflate the tire.",
    "d19": "A black hole is a region of space where gravity is so strong that not even light can escape.",
    "d21": "Black holes form when massive stars collapse at the end of their lives.",
    "d22": "sorted(d.items(), key=lambda kv: kv[1]) sorts a Python dictionary's items by their values.",
    "d23": "Use operator.itemgetter(1) as the sort key to order dictionary entries by value.",
    "d24": "Overnight oats with milk, fruit and a spoon of peanut butter make a quick breakfast children enjoy.",
    "d25": "Whole-grain toast with scrambled eggs gives kids protein and fibre in the morning.",
    "D31": "Greek yogurt topped with berries and honey is a healthy breakfast for kids.",
    "d31": "Greek yogurt topped with berries and honey is a healthy breakfast for kids.",
    "d26": "A banana smoothie with spinach and oats is an easy breakfast for picky eaters.",
    "d27": "Cut sugary cereals; wholemeal pancakes with fruit are a healthier breakfast choice.",
    "10": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "9": "Tomato plants need six to eight hours of sun and deep, regular watering.",
    "doc-a": "Jupiter is the largest planet in the Solar System and has dozens of moons.",
    "doc-b": "Regular expressions in Python live in the re module.",
    "Z1": "Red blood cells carry oxygen with haemoglobin, which needs iron.",
    "z1": "A capo lets a guitarist play the same chord shapes in a higher key.",
    "d40": "Train tickets between Porto and Lisbon are cheap when bought early.",
    "d41": "Dogs wag their tails to communicate, not only when they are happy.",
}

TEXT_RELEVANT = {
    "q1": ["d1", "d2", "d14"],
    "q2": ["d3", "d11", "d4"],
    "q3": ["d5", "d6"],                    # d20 (same text as d6, not relevant) sorts before d6
    "q4": ["d7", "Z1"],
    "q5": ["d8", "d9", "missing_doc"],    # one relevant id is not in the corpus
    "q6": ["d10", "d12", "d13"],
    "q7": ["d15", "z1"],
    "q8": ["d16", "d17"],
    "q9": ["d18"],
    "q10": ["d19", "d21"],
    "q11": ["d22", "d23", "d5"],
    "q12": ["d24", "d25", "d31", "d26", "d27"],   # D31 (same text as d31, not relevant) sorts before d31
    "q_empty": [],                      # no relevant document: not evaluated
    "q_ghost": ["d1"],                  # not a query: ignored
}

# Each case: keyword arguments of InformationRetrievalEvaluator; "score_functions" is a list of names mapped to the
# library's own util functions (cosine -> cos_sim, dot -> dot_score); "prompts" are set on the model for the case.
TEXT_CASES = [
    {"case": "defaults", "kwargs": {}},
    {"case": "custom_k", "kwargs": {
        "name": "edge", "corpus_chunk_size": 7, "mrr_at_k": [1, 5], "ndcg_at_k": [3, 10, 50],
        "accuracy_at_k": [1, 2, 7], "precision_recall_at_k": [2, 4, 60], "map_at_k": [5, 100],
        "truncate_dim": 128, "score_functions": ["cosine", "dot"]}},
    {"case": "prompts", "kwargs": {
        "name": "prompted", "corpus_chunk_size": 10, "query_prompt": "query: ", "corpus_prompt": "passage: ",
        "truncate_dim": 64, "score_functions": ["dot", "cosine"], "main_score_function": "dot",
        "ndcg_at_k": [5], "map_at_k": [10]}},
    {"case": "prompt_names", "prompts": {"q": "Represent this question for retrieval: ", "doc": "Document: "},
     "kwargs": {"query_prompt_name": "q", "corpus_prompt_name": "doc", "write_predictions": True,
                "accuracy_at_k": [3], "precision_recall_at_k": [3], "mrr_at_k": [3, 10]}},
]

# The retrieval data as a BEIR folder can hold it (there, a judgement of a document that is not in the corpus is an
# error): tests/test_beir.py writes it out, reads it back with load_beir and must get these results.
BEIR_CASES = [
    {"case": "beir_folder", "kwargs": {"name": "beir", "truncate_dim": 128, "mrr_at_k": [1, 5], "ndcg_at_k": [3, 10],
                                       "accuracy_at_k": [1, 2], "precision_recall_at_k": [2, 4], "map_at_k": [5]}},
]


def beir_relevant() -> dict[str, list[str]]:
    """TEXT_RELEVANT without what a BEIR folder cannot hold: ids absent from the corpus or the queries."""
    kept = {q: [d for d in docs if d in TEXT_CORPUS] for q, docs in TEXT_RELEVANT.items() if q in TEXT_QUERIES}
    return {q: docs for q, docs in kept.items() if docs}


# --------------------------------------------------------------------------------------------------------------
# Retrieval on preset vectors (a stand-in model): exact scores, many ties
# --------------------------------------------------------------------------------------------------------------

FIXED_VECTORS = {
    "fq1": [1, 0, 0, 1], "fq2": [0, 1, 0, 0], "fq3": [1, 1, 0, 2], "fq4": [0, 0, 1, 0], "fq5": [2, 1, 1, 0],
    "fq6": [1, 1, 1, 1],
    "e1": [3, 0, 0, 0], "e2": [3, 0, 0, 0], "e10": [3, 0, 0, 0], "e3": [2, 1, 0, 1], "e4": [0, 3, 0, 0],
    "e5": [1, 2, 0, 0], "e6": [0, 0, 2, 0], "e7": [2, 0, 1, 1], "e8": [1, 1, 1, 0], "e9": [0, 2, 1, 0],
    "x1": [0, 3, 0, 0], "X2": [1, 2, 0, 0], "e11": [1, 0, 2, 3], "e12": [0, 1, 2, 0], "e13": [2, 2, 0, 0],
    "e0": [0, 0, 0, 0], "e14": [1, 2, 0, 2], "e15": [3, 0, 0, 0], "n1": [-1, 2, 0, -3], "n2": [1, -2, 0, 3],
}
FIXED_QUERIES = {q: q for q in ("fq1", "fq2", "fq3", "fq4", "fq5", "fq6")}  # the text is the vector's name
# The first chunk of 4 holds four documents that tie for fq1 in an order other than their ids': its top 3 by id
# (e1, e10, e15) is not its first 3 (e2, e15, e10), and e1 is relevant.
FIXED_CORPUS = {d: d for d in ("e2", "e15", "e10", "e1", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "x1", "X2", "e11",
                               "e12", "e13", "e0", "e14")}
FIXED_RELEVANT = {
    "fq1": ["e1", "e7", "e15"],        # e11 scores 4; e1, e10, e14, e15, e2, e3, e7 tie on 3, ranked in this id order
    "fq2": ["x1", "e9", "e5"],         # e4 and x1 tie (3); e5, X2, e9, e13 tie (2)
    "fq3": ["e13", "e5", "e3", "e99"],  # e99 is not in the corpus
    "fq4": ["e6", "e12", "e11", "e0"],  # e0 is the zero vector
    "fq5": ["e3", "e8"],
    "fq6": [],
}
FIXED_CASES = [
    {"case": "fixed_chunks", "kwargs": {
        "name": "fixed", "corpus_chunk_size": 4, "accuracy_at_k": [1, 2, 3], "precision_recall_at_k": [1, 2, 3],
        "mrr_at_k": [3], "ndcg_at_k": [2, 3], "map_at_k": [3], "score_functions": ["dot", "cosine"]}},
    {"case": "fixed_defaults", "kwargs": {}},
    {"case": "fixed_truncate", "kwargs": {"truncate_dim": 2, "corpus_chunk_size": 5, "score_functions": ["dot"],
                                          "main_score_function": "cosine"}},
]
FIXED_SIMILARITY_FN_NAME = "dot"  # the stand-in model's similarity_fn_name (its default score function)

# --------------------------------------------------------------------------------------------------------------
# Embedding similarity
# --------------------------------------------------------------------------------------------------------------

STS_PAIRS = [  # (sentence1, sentence2, gold score); gold ties: 4.6, 4.0, 0.0, 1.2, 5.0
    ("A man is playing a guitar.", "A person plays the guitar.", 4.6),
    ("A woman is slicing an onion.", "Someone is cutting an onion.", 4.6),
    ("The cat sleeps on the sofa.", "A dog runs in the park.", 0.4),
    ("Stocks fell sharply on Monday.", "The market dropped at the start of the week.", 4.0),
    ("He is reading a book.", "She is writing a letter.", 1.2),
    ("The train arrives at noon.", "The train arrives at noon.", 5.0),
    ("Kids are playing football.", "Children play soccer outside.", 4.0),
    ("A plane is taking off.", "An airplane departs from the runway.", 4.8),
    ("The soup is too salty.", "The weather is cold today.", 0.0),
    ("I love this song.", "The movie was boring.", 0.0),
    ("A man is riding a horse.", "A man rides a bicycle.", 2.0),
    ("Water boils at 100 degrees.", "Ice melts when it is warm.", 1.2),
    ("The baby is laughing.", "An infant giggles.", 4.4),
    ("Two dogs are fighting.", "Two dogs play together.", 2.6),
    ("She bought a new car.", "She purchased a new vehicle.", 4.9),
    ("The phone is ringing.", "Someone is calling the phone.", 3.5),
    ("The train arrives at noon.", "The train arrives at noon.", 5.0),
]
STS_CASES = [
    {"case": "sts_defaults", "kwargs": {}},
    {"case": "sts_all", "kwargs": {"name": "sts", "similarity_fn_names": ["cosine", "euclidean", "manhattan", "dot"],
                                   "batch_size": 5}},
    {"case": "sts_main", "kwargs": {"main_similarity": "euclidean", "truncate_dim": 32}},
    {"case": "sts_main_many", "kwargs": {"main_similarity": "dot", "similarity_fn_names": ["dot", "cosine"],
                                         "name": "m"}},
]
# Preset vectors: pairwise scores that tie exactly, against gold scores that tie too. The quantized cases are here,
# not on real text: a binary bit is `component > 0`, and the real model has components of 1e-33 (dimensions 127,
# 223, 319 of all-MiniLM-L6-v2), whose sign no test should hinge on; the stand-in quantizes with each library's own
# util.quantize_embeddings, so these cases test the evaluator's unpacking of the bits.
STS_FIXED_PAIRS = [("e1", "e2", 1.0), ("e3", "e5", 0.5), ("e4", "x1", 1.0), ("e6", "e12", 0.5), ("e7", "e11", 0.2),
                   ("e8", "e9", 0.5), ("e13", "e14", 0.7), ("e2", "e4", 0.0), ("e5", "e13", 0.9), ("n1", "n2", 0.0),
                   ("n1", "e9", 0.3), ("n2", "e11", 0.7)]
STS_FIXED_CASES = [
    {"case": "sts_fixed", "kwargs": {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]}},
    # on bits, only integer-valued scores: the cosine of two equal bit vectors is 1 or 0.99999994 by their norm
    {"case": "sts_fixed_ubinary", "kwargs": {"precision": "ubinary", "similarity_fn_names": ["manhattan", "dot"],
                                             "main_similarity": "manhattan"}},
    {"case": "sts_fixed_binary", "kwargs": {"precision": "binary", "name": "bin"}},
    {"case": "sts_fixed_binary_euclidean", "kwargs": {"precision": "binary", "similarity_fn_names": ["euclidean"]}},
]

# --------------------------------------------------------------------------------------------------------------
# Reranking with a stand-in cross-encoder: predict() reads RERANK_TABLE[query][document]
# --------------------------------------------------------------------------------------------------------------

RERANK_TABLE = {
    "r1": {"a": 0.9, "b": 0.5, "c": 0.5, "d": 0.7, "e": 0.1},      # b (relevant) ties c at ranks 3-4
    "r2": {"f": 0.3, "g": 0.8, "h": 0.8, "i": 0.2},                 # two irrelevant tie above the relevant one
    "r3": {"j": 0.6, "k": 0.6, "l": 0.4},                           # two relevant tie at the top
    "r4": {"m": 0.2, "n": 0.1},
    "r5": {"o": 0.4, "p": 0.9, "q": 0.4, "r": 0.4, "s": 0.0},       # o (relevant) in a tie of three
    "r6": {"t": 0.1, "u": 0.5, "v": 0.5},
    "r7": {"w": -1.0, "x": -2.0, "y": -3.0, "z": -2.0},
    "r8": {"aa": 0.8, "bb": 0.3, "cc": 0.3, "dd": 0.5, "ee": 0.3},   # bb (relevant) in a tie of three
}
RERANK_SAMPLES = {
    "r1": {"query": "r1", "positive": ["a", "b"], "negative": ["c", "d", "e"]},
    "r2": {"query": "r2", "positive": "f", "negative": ["g", "h", "i"]},           # a str positive
    "r3": {"query": "r3", "positive": ["j", "k"], "negative": ["l"]},
    "r4": {"query": "r4", "positive": [], "negative": ["m", "n"]},                  # no positive: scores 0
    "r5": {"query": "r5", "positive": ["o", "p"], "documents": ["q", "o", "r", "s"]},  # p is not in documents
    "r6": {"query": "r6", "positive": ["t"], "documents": ["u", "v"]},             # no positive in documents
    "r7": {"query": "r7", "positive": ["w"], "negative": ["x", "y", "z"]},
    "r8": {"query": "r8", "positive": ["aa", "bb"], "documents": ["cc", "aa", "dd", "ee", "bb"]},
}
RERANK_CASES = [
    {"case": "rerank_negatives", "samples": ["r1", "r2", "r3", "r4", "r7"], "kwargs": {"at_k": 3, "name": "rr"}},
    {"case": "rerank_documents", "samples": ["r5", "r6", "r1", "r8"], "kwargs": {}},
    {"case": "rerank_documents_only_present", "samples": ["r8", "r6", "r3"],
     "kwargs": {"always_rerank_positives": False, "mrr_at_k": 2, "name": "present"}},
    {"case": "rerank_at_1", "samples": ["r1", "r2", "r3", "r5", "r7"], "kwargs": {"at_k": 1, "batch_size": 2}},
]
# With the real model as the scorer (a stand-in cross-encoder scoring a pair by the cosine of its two embeddings):
# per query of TEXT_QUERIES with relevant documents, its relevant texts against every 5th other document.
MINILM_RERANK_CASES = [
    {"case": "rerank_minilm", "kwargs": {"name": "minilm"}},
    {"case": "rerank_minilm_at_3", "kwargs": {"at_k": 3}},
]

# With a real cross-encoder: tinyminilm.CrossEncoder against sentence-transformers' CrossEncoder, both loading the
# random-weight folder of tests/cross_models.py's `variant` (rebuilt from its seed), on cross_rerank_samples().
CROSS_RERANK_CASES = [
    {"case": "rerank_cross_random", "variant": "st4-config", "kwargs": {"name": "cross"}},
    {"case": "rerank_cross_random_at_3", "variant": "st4-config", "kwargs": {"at_k": 3, "batch_size": 4}},
]


def minilm_rerank_samples() -> list[dict]:
    """RERANK samples from the retrieval data: relevant texts as positives, every 5th other document as negatives."""
    ids = list(TEXT_CORPUS)
    samples = []
    for n, (qid, rel) in enumerate(TEXT_RELEVANT.items()):
        if qid not in TEXT_QUERIES or not rel:
            continue
        positive = [TEXT_CORPUS[d] for d in rel if d in TEXT_CORPUS]
        negative = [TEXT_CORPUS[d] for d in ids[n % 5::5] if TEXT_CORPUS[d] not in positive]
        samples.append({"query": TEXT_QUERIES[qid], "positive": positive, "negative": negative})
    return samples


def cross_rerank_samples() -> list[dict]:
    """minilm_rerank_samples() with each text once per sample. Two identical pairs tie exactly only when torch pads
    them alike: in batches of other lengths sentence-transformers scores them ~1e-7 apart, and scikit-learn's
    average precision scores two relevant documents tied otherwise than the same two one after the other."""
    return [dict(s, positive=list(dict.fromkeys(s["positive"]))) for s in minilm_rerank_samples()]


def data_hash() -> str:
    """SHA-256 of every input above, so that a test can tell a stale golden file from a wrong result."""
    data = [TEXT_QUERIES, TEXT_CORPUS, TEXT_RELEVANT, TEXT_CASES, BEIR_CASES, FIXED_VECTORS, FIXED_QUERIES,
            FIXED_CORPUS, FIXED_RELEVANT, FIXED_CASES, FIXED_SIMILARITY_FN_NAME, STS_PAIRS, STS_CASES, STS_FIXED_PAIRS,
            STS_FIXED_CASES, RERANK_TABLE, RERANK_SAMPLES, RERANK_CASES, MINILM_RERANK_CASES, CROSS_RERANK_CASES,
            minilm_rerank_samples(), cross_rerank_samples()]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
