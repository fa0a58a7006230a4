"""The util golden cases: scripts/make_golden_util.py computes them with sentence-transformers, tests/test_util.py
replays them with tinyminilm. One list, imported by both."""

# (case, query rows, corpus rows, keyword arguments; score_function by name)
SEARCH_CASES = [
    ("ss_E", ("E", 0, 60), ("E", 0, 370), {}),
    ("ss_E_chunks", ("E", 0, 60), ("E", 0, 370), {"query_chunk_size": 7, "corpus_chunk_size": 40, "top_k": 15}),
    ("ss_E_bigk", ("E", 0, 10), ("E", 0, 50), {"top_k": 80}),
    ("ss_R", ("R", 0, 30), ("R", 0, 200), {}),
    ("ss_R_dot", ("R", 0, 30), ("R", 0, 200), {"score_function": "dot_score", "top_k": 12, "corpus_chunk_size": 64}),
    ("ss_R_manhattan", ("R", 0, 30), ("R", 0, 200), {"score_function": "manhattan_sim", "top_k": 5}),
]
MINING_CASES = [
    ("pm_U", ("U", 0, 358), {"top_k": 10}),
    ("pm_U_small", ("U", 0, 358), {"query_chunk_size": 50, "corpus_chunk_size": 64, "top_k": 3, "max_pairs": 200}),
    ("pm_R", ("R", 0, 200), {"query_chunk_size": 33, "corpus_chunk_size": 70, "top_k": 4, "max_pairs": 100}),
    ("pm_R_dot", ("R", 0, 200), {"top_k": 2, "score_function": "dot_score"}),
]
COMMUNITY_CASES = [
    ("cd_E", ("E", 0, 370), {"threshold": 0.6, "min_community_size": 3}),
    ("cd_E_batches", ("E", 0, 370), {"threshold": 0.5, "min_community_size": 5, "batch_size": 50}),
    ("cd_C", ("C", 0, 240), {"threshold": 0.75, "min_community_size": 10, "batch_size": 64}),
    ("cd_C_pairs", ("C", 0, 240), {"threshold": 0.93, "min_community_size": 2}),
]
