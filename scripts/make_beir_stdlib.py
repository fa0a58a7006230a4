"""Write scripts/data/beir-stdlib/, the worked example of docs/evaluation.md: a BEIR folder made from the 4,000
standard-library docstrings of scripts/data/stdlib_docstrings.txt and 51 questions written for this example, each
in plain words, as someone who does not know the module's name would ask it.

    python scripts/make_beir_stdlib.py
    tinyminilm evaluate scripts/data/beir-stdlib --failures 5

corpus.jsonl   one document per docstring line, "_id" its line number in stdlib_docstrings.txt (from 1), no title
queries.jsonl  QUERIES below, "_id" q01..q51
qrels/test.tsv the docstrings that answer each question (score 1). The judgements are sparse, as in MS MARCO: only
               the docstrings picked here count as relevant, so another docstring that also answers a question
               counts as a miss. No test reads this folder.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
OUT = DATA / "beir-stdlib"

# (question, the line numbers (from 1) of stdlib_docstrings.txt that answer it)
QUERIES = [
    ("pick several different items at random from a list", [3802]),
    ("how do I know if a year has 366 days", [450]),
    ("turn a base64 string back into bytes", [242]),
    ("is this folder where a drive is mounted", [2922, 3144, 3526]),
    ("rename a file even if the new name already exists", [3162]),
    ("what is the difference between a shallow copy and a deep copy", [997, 999]),
    ("store a password safely as a salted hash", [1022]),
    ("ask for a password without showing the typed characters", [1749]),
    ("make a secure random token for a login link", [3904]),
    ("a priority queue that always gives back the smallest item", [1860, 1861]),
    ("a list that is fast to add and remove from both ends", [806]),
    ("count how often each word occurs", [755]),
    ("dictionary that creates a value for a missing key automatically", [805]),
    ("freeze some arguments of a function to make a new function", [1712]),
    ("remember the results of an expensive function", [1697]),
    ("keep the original function's name and docstring in my decorator", [1724]),
    ("check if an object is a dataclass", [1060]),
    ("convert a dataclass object into a plain dict", [1061]),
    ("a lightweight text format for exchanging data between programs", [2365]),
    ("pretty-print and validate JSON on the command line", [2369]),
    ("read and write .gz files", [1795]),
    ("compress with xz", [2633]),
    ("bzip2 compression", [355]),
    ("parse command line options the way Unix getopt does", [1741]),
    ("match file names against a wildcard pattern like *.txt", [1585]),
    ("tell whether a file is a PNG or a JPEG by looking at its first bytes", [2032]),
    ("print a nested data structure so it is easy to read", [3536]),
    ("a queue that several threads can put work into and take work from", [3728]),
    ("run a function later at a given time", [3886]),
    ("download files from an FTP server", [1617]),
    ("is one IP network contained in another", [2302]),
    ("reverse DNS name of an IPv6 address", [2322]),
    ("read a macOS property list file", [3462, 3463]),
    ("read login names and passwords from ~/.netrc", [2841]),
    ("a dictionary saved on disk between runs", [3951]),
    ("run the examples in my docstrings as tests", [1290]),
    ("find out which functions make my program slow", [404]),
    ("show the bytecode instructions of a function", [1245]),
    ("compare two texts and show what changed", [1112]),
    ("loop over every match of a regex in a string", [3842]),
    ("add up the size of all files under a folder", [3127]),
    ("restore the terminal if my full-screen console app crashes", [1058]),
    ("send warnings to the logging system instead of stderr", [2609]),
    ("what does logging do by default when nothing is configured", [2602]),
    ("translate my program's messages into other languages", [1760]),
    ("inspect the variables after my script crashed with an exception", [3203]),
    ("round to a number of decimals, with halves going to the even number", [2997]),
    ("random numbers whose logarithm is normally distributed", [3795]),
    ("decode quoted-printable text in an email", [3762]),
    ("get the weeks of a month as rows of dates", [420]),
    ("fastest way to copy a file on Linux", [3998]),
]


def main() -> None:
    lines = (DATA / "stdlib_docstrings.txt").read_text(encoding="utf-8").splitlines()
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with open(OUT / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": str(n), "text": text}, ensure_ascii=False) + "\n"
                     for n, text in enumerate(lines, 1))
    with open(OUT / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": f"q{i:02d}", "text": q}) + "\n" for i, (q, _) in enumerate(QUERIES, 1))
    with open(OUT / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"q{i:02d}\t{n}\t1\n" for i, (_, relevant) in enumerate(QUERIES, 1) for n in relevant)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT}: {len(lines):,} documents, {len(QUERIES)} queries, {size:,} bytes")


if __name__ == "__main__":
    main()
