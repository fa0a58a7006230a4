"""Texts to token ids, as sentence-transformers tokenizes them, for any tokenizer.json the `tokenizers` library runs.

sentence-transformers loads tokenizer.json (WordPiece, SentencePiece Unigram, BPE: whatever its model, normalizer,
pre-tokenizer and template say, [CLS] … [SEP] or <s> … </s>), then truncates at the model's max_seq_length (256 for
all-MiniLM-L6-v2 — not the 128 that file carries) and pads each batch to its longest text (not to the file's fixed
128) with the tokenizer's pad token. `Tokenizer` does the same with the `tokenizers` library, one text at a time,
and adds one thing of its own: with BERT's pipeline (BertNormalizer, BertPreTokenizer, WordPiece), a text far longer
than max_seq_length tokens is first cut at a place where the tokenizer splits anyway (see `_precut`), so a 10 MB
string costs what ~10 kB costs, with exactly the ids of the whole text. Other tokenizers take texts whole.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import TokenizerError, check_texts


class Tokenizer:
    """tokenizer.json set up as sentence-transformers sets it up: truncation at max_length, no padding.

    lowercase: the model's do_lower_case (sentence_bert_config.json); as in sentence-transformers 6.2, a Lowercase
    step goes in front of the tokenizer's normalizer unless that already has one, so special tokens typed in a text
    ("[MASK]") stay special. pad_token_id: the id to pad with when the tokenizer files name no pad token
    (config.json's pad_token_id); the pad token of tokenizer_config.json, else special_tokens_map.json, else
    tokenizer.json's padding comes first, as transformers pads with it.
    Immutable once built (`with_max_length` makes a new one), so one instance may serve many threads.
    """

    def __init__(self, path: Path, max_length: int, lowercase: bool, pad_token_id: int,
                 _cut: _CutPlan | None | bool = False) -> None:
        from tokenizers import Tokenizer as RustTokenizer

        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: file not found; a model folder needs its tokenizer.json")
        try:
            backend = RustTokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for malformed files
            raise TokenizerError(f"{path}: cannot be loaded as a tokenizers file ({e}); replace it with an intact "
                                 "copy (tinyminilm download)") from None
        padding = backend.padding  # read before it is turned off
        backend.no_padding()  # the shipped file pads every text to 128; we pad per batch instead
        backend.enable_truncation(max_length)  # counts [CLS] and [SEP], as transformers' max_length does
        spec = json.loads(backend.to_str())  # the file's pipeline, parsed once for the two readers below
        if lowercase:
            _lowercase_first(backend, spec)
        self.path, self.max_length, self.lowercase = path, max_length, lowercase
        named = _special_tokens(path)
        pad = named.get("pad_token") or [(padding or {}).get("pad_token")]
        self.pad_token_id = _token_id(backend, pad[0], pad_token_id)
        # the ids of special tokens ([CLS], [SEP], <s>, </s>, …), as transformers' all_special_ids
        self.special_ids = frozenset({i for i, t in backend.get_added_tokens_decoder().items() if t.special}
                                     | {_token_id(backend, t, None) for ts in named.values() for t in ts} - {None})
        self.backend = backend  # the `tokenizers` object, for id_to_token and friends; do not reconfigure it
        self._cut = _cut_plan(backend, spec) if _cut is False else _cut

    def with_max_length(self, max_length: int) -> Tokenizer:
        """A new Tokenizer that truncates at max_length (this one is left as it is)."""
        return Tokenizer(self.path, max_length, self.lowercase, self.pad_token_id, self._cut)

    def ids(self, texts: list[Any], name: str = "texts") -> list[list[int]]:
        """The token ids of each text, with the template's special tokens ([CLS] … [SEP], <s> … </s>), truncated at
        max_length, unpadded.

        A non-str item raises ArgumentTypeError and a lone surrogate ArgumentError, naming `name`[index].
        """
        check_texts(texts, name)
        return [_encode_ids(self.backend, t, self.max_length, self._cut) for t in texts]

    def pad(self, ids: list[list[int]]) -> dict[str, np.ndarray]:
        """Pad id lists to the longest one: input_ids, attention_mask, token_type_ids, each int64 [B, L].

        Padding uses the tokenizer's pad id; token_type_ids are zeros, BERT's type 0 for a single text (what
        BertModel uses too when a tokenizer such as XLM-R's gives none).
        """
        L = max((len(x) for x in ids), default=0)
        input_ids = np.full((len(ids), L), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), L), dtype=np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)] = x
            attention_mask[i, :len(x)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}

    def untruncated_length(self, text: str) -> int:
        """Token count of `text` with the template's special tokens but without truncation (to tell a reader what
        was cut, or to refuse a text that is too long)."""
        return len(self._untruncated_backend().encode(text, add_special_tokens=True).ids)

    def untruncated_pair_length(self, a: str, b: str) -> int:
        """Token count of the pair (`[CLS] a [SEP] b [SEP]` for BERT) without truncation (to refuse a pair that is
        too long)."""
        return len(self._untruncated_backend().encode(a, b, add_special_tokens=True).ids)

    def _untruncated_backend(self):
        untruncated = self.__dict__.get("_untruncated")
        if untruncated is None:  # a private copy, made once: the shared one stays configured; a race makes two
            from tokenizers import Tokenizer as RustTokenizer

            untruncated = RustTokenizer.from_str(self.backend.to_str())
            untruncated.no_truncation()
            self._untruncated = untruncated
        return untruncated

    # Text pairs, as a cross-encoder reads them

    def pair_ids(self, pairs: list[tuple[str, str]], name: str = "pairs") -> list[tuple[list[int], list[int]]]:
        """(ids, token types) of each (a, b) pair: `[CLS] a [SEP] b [SEP]` with types 0 for `[CLS] a [SEP]` and 1
        for `b [SEP]` (the tokenizer's pair template), truncated at max_length by the tokenizers library's
        "longest_first" strategy as sentence-transformers' CrossEncoder truncates, unpadded.

        The caller makes sure each item is a pair; a text that is not a str is an ArgumentTypeError, a lone
        surrogate an ArgumentError, naming `name`[index][0 or 1].
        """
        out = []
        for i, (a, b) in enumerate(pairs):
            check_texts([a, b], f"{name}[{i}]")
            out.append(_encode_pair(self.backend, a, b, self.max_length, self._cut))
        return out

    def pad_pairs(self, encoded: list[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
        """Pad `pair_ids` output to the longest pair: input_ids, attention_mask, token_type_ids, each int64 [B, L]."""
        batch = self.pad([ids for ids, _ in encoded])
        for i, (_, types) in enumerate(encoded):
            batch["token_type_ids"][i, :len(types)] = types
        return batch


def _normalizer_steps(norm: dict | None) -> list[dict]:
    """The steps of a tokenizer.json "normalizer" entry: a Sequence's list, one normalizer alone, or none."""
    return norm.get("normalizers", []) if norm and norm.get("type") == "Sequence" else [norm] if norm else []


def _lowercase_first(backend, spec: dict) -> None:
    """Put a Lowercase step in front of the tokenizer's normalizer, unless it has one: what sentence-transformers 6.2
    does for do_lower_case (BertNormalizer's own lowercase flag does not count, as there). Added tokens that are not
    normalized, such as [MASK], are matched before it, so a typed "[MASK]" stays one special token. spec: the
    backend's tokenizer.json as a dict."""
    from tokenizers import normalizers

    norm = spec.get("normalizer")
    steps = _normalizer_steps(norm)
    if any(step.get("type") == "Lowercase" for step in steps):
        return
    current = backend.normalizer
    if current is None:
        rest = []
    elif norm.get("type") == "Sequence":
        rest = [current[i] for i in range(len(steps))]
    else:
        rest = [current]
    backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), *rest])


def _special_tokens(path: Path) -> dict[str, list[str]]:
    """The special tokens that tokenizer_config.json and special_tokens_map.json (beside tokenizer.json) name, by
    role ("pad_token", "cls_token", …, "additional_special_tokens"), as transformers reads them; the first file
    that names a role wins. {} without either file."""
    named: dict[str, list[str]] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            data = json.loads((path.parent / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # no file, or not JSON: nothing named there
            continue
        for role, value in data.items() if isinstance(data, dict) else ():
            if role.endswith("_token") or role == "additional_special_tokens":
                tokens = value if isinstance(value, list) else [value]
                tokens = [t.get("content") if isinstance(t, dict) else t for t in tokens]
                named.setdefault(role, [t for t in tokens if isinstance(t, str)])
    return named


def _token_id(backend, token: str | None, default: int | None) -> int | None:
    """The vocabulary's id of `token`, or `default` when it is None or not in the vocabulary."""
    found = backend.token_to_id(token) if isinstance(token, str) else None
    return default if found is None else found


# A text longer than max_seq_length * this many characters is cut before tokenizing (the cut is checked: see
# _encode_ids). English averages ~4-5 characters per token, so 32 leaves a wide margin.
_PRECUT_CHARS_PER_TOKEN = 32


class _CutPlan(NamedTuple):
    """Where a text may be cut without changing its first tokens, for one tokenizer."""

    boundary: re.Pattern  # characters the pre-tokenizer always splits at, left alone by the normalizer
    space_run: re.Pattern  # runs of ASCII whitespace: one separator, however long
    word_limit: int  # WordPiece's max_input_chars_per_word: a longer word is one [UNK]


def _cut_plan(tokenizer, spec: dict | None = None) -> _CutPlan | None:
    """How texts may be pre-cut for this tokenizer, or None to always tokenize texts whole (spec: its
    tokenizer.json as a dict, when the caller has parsed it already; a Lowercase step in front is skipped).

    Only for the BERT pipeline whose behaviour is known to be local: BertNormalizer (control characters removed,
    CJK ideographs spaced out, NFD + accent stripping, per-character lowercase; a Lowercase step in front of it, as
    do_lower_case puts there, lowercases each character alone too) → BertPreTokenizer (split at whitespace and
    punctuation) → WordPiece. Cutting just before an ASCII space/tab/newline, ASCII punctuation, the
    ideographic space, a CJK comma or full stop (or a CJK ideograph, when the normalizer spaces them out) keeps
    every earlier word whole and
    normalized as in the full text: these characters are unchanged by the normalizer, are NFD starters (so no
    combining-mark reordering crosses them) and are split at by the pre-tokenizer. Characters that occur in an
    added token such as "[MASK]" are never cut at, so no added token is broken.
    """
    import string

    spec = json.loads(tokenizer.to_str()) if spec is None else spec
    norm, pre, wp = spec.get("normalizer"), spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    steps = _normalizer_steps(norm)
    while steps and steps[0].get("type") == "Lowercase":  # per character, no context (not even a final sigma)
        steps = steps[1:]
    norm = steps[0] if steps else None
    if (len(steps) > 1 or (norm is not None and norm.get("type") != "BertNormalizer")
            or pre.get("type") != "BertPreTokenizer" or wp.get("type") != "WordPiece"):
        return None
    added = "".join(t.get("content", "") for t in spec.get("added_tokens") or [])
    if any(c.isspace() for c in added):
        return None
    # ASCII whitespace and punctuation, the ideographic space and a few CJK punctuation marks (NFD leaves them be)
    cut_at = re.escape("".join(c for c in " \t\n\r\u3000\u3001\u3002\uff0c\uff01\uff1f" + string.punctuation
                               if c not in added))
    if norm is not None and norm.get("handle_chinese_chars", True):
        cut_at += "\u3400-\u4dbf\u4e00-\u9fff"  # CJK Unified Ideographs (+ Extension A): always a word of their own
    return _CutPlan(re.compile(f"[{cut_at}]"), re.compile("[ \t\n\r]{2,}"),
                    int(wp.get("max_input_chars_per_word", 100)))


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM_TAIL = re.compile("[0-9A-Za-z]*")


def _precut(text: str, limit: int, plan: _CutPlan | None) -> tuple[str, int | None]:
    """A shorter text whose tokens start with the tokens of `text`: (short, cut).

    cut=None: `short` has the same tokens as `text`, all of them. Otherwise `short` is `text[:cut]`, cut just
    before a boundary character at or after `limit`, so its tokens are the first tokens of `text`; the caller
    checks that there are enough of them. Runs of ASCII whitespace are squeezed to one space (the pre-tokenizer
    drops them).
    A text with no boundary after `limit` is returned whole (squeezed) — unless it ends in one long run of ASCII
    letters and digits, which is a single word longer than WordPiece's limit, hence one [UNK] however long.
    """
    if plan is None or len(text) <= limit:
        return text, None
    m = plan.boundary.search(text, limit)
    if m is not None:
        return plan.space_run.sub(" ", text[:m.start()]), m.start()
    if _ALNUM_TAIL.fullmatch(text, limit):  # text[limit:] holds letters and digits only
        start = len(text[:limit].rstrip(_ALNUM))  # where that run begins
        keep = start + plan.word_limit + 1  # still longer than word_limit: still one [UNK]
        if keep < len(text):
            return plan.space_run.sub(" ", text[:keep]), None
    return plan.space_run.sub(" ", text), None


def _encode_ids(tokenizer, text: str, max_length: int, plan: _CutPlan | None) -> list[int]:
    """The ids of `text`, [CLS] … [SEP], truncated at max_length, tokenizing no more of it than needed.

    One text per `encode` call, never `encode_batch`: that uses the Rust thread pool, which a forked child
    inherits without its threads when TOKENIZERS_PARALLELISM=true — and then hangs.
    """
    try:
        return _shortened(tokenizer, text, max_length, plan)[1]
    except Exception as e:  # tokenizers raises bare Exceptions; say which tokenizer failed on what
        raise TokenizerError(f"the tokenizer failed on a text of {len(text)} characters ({e})") from None


def _shortened(tokenizer, text: str, max_length: int, plan: _CutPlan | None) -> tuple[str, list[int]]:
    """(short, ids): the text tokenized instead of `text`, and its ids ([CLS] … [SEP], truncated at max_length).

    A pre-cut text is accepted only if its ids fill max_length (then they are the full text's first tokens, and
    truncation keeps nothing else); otherwise the cut moves out (4x, and past the last cut), until the text is
    taken whole.
    """
    limit = max_length * _PRECUT_CHARS_PER_TOKEN
    while True:
        short, cut = _precut(text, limit, plan)
        ids = tokenizer.encode(short, add_special_tokens=True).ids
        if cut is None or len(ids) >= max_length:
            return short, ids
        limit = max(4 * limit, cut + 1)
        if limit >= len(text):  # the last round takes the whole text, its whitespace runs squeezed
            text = plan.space_run.sub(" ", text)


def _encode_pair(tokenizer, a: str, b: str, max_length: int, plan: _CutPlan | None) -> tuple[list[int], list[int]]:
    """(ids, token types) of the pair (a, b), truncated "longest_first" at max_length, tokenizing no more of either
    text than keeps those ids (see `_pair_texts`). One pair per `encode` call, as in `_encode_ids`."""
    try:
        short_a, short_b = _pair_texts(tokenizer, a, b, max_length, plan)
        encoding = tokenizer.encode(short_a, short_b, add_special_tokens=True)
    except Exception as e:  # tokenizers raises bare Exceptions; say which tokenizer failed on what
        raise TokenizerError(f"the tokenizer failed on a pair of texts of {len(a)} and {len(b)} characters ({e})"
                             ) from None
    return encoding.ids, encoding.type_ids


def _pair_texts(tokenizer, a: str, b: str, max_length: int, plan: _CutPlan | None) -> tuple[str, str]:
    """Texts to tokenize instead of a and b, each cut as a single text is (`_shortened`), where the pair's ids stay
    those of the whole texts.

    "longest_first" keeps M = max_length − (the pair's special tokens) text tokens: with n ≤ m tokens in the two
    texts, the shorter keeps n and the longer M − n when 2n ≤ M; otherwise the shorter keeps M // 2 and the longer
    the rest (M // 2, or one more when M is odd). A text cut after more than M tokens therefore keeps the same
    ids as long as it stays the longer one: certain when the other text has at most M tokens, and immaterial when
    both have more and M is even. When both have more than M and M is odd, which one is longer decides where the
    odd token goes, so both are tokenized whole.
    """
    limit = max_length * _PRECUT_CHARS_PER_TOKEN
    if plan is None or (len(a) <= limit and len(b) <= limit):  # most pairs: nothing to cut
        return a, b
    single, pair = tokenizer.num_special_tokens_to_add(False), tokenizer.num_special_tokens_to_add(True)
    if pair <= single:
        return a, b
    room = max_length - pair  # M
    (short_a, ids_a), (short_b, ids_b) = (_shortened(tokenizer, t, max_length, plan) for t in (a, b))
    # a text is "long" when it has more than M tokens; the ids of one cut are max_length long, so it is
    both_long = min(len(ids_a), len(ids_b)) - single > room
    return (a, b) if both_long and room % 2 else (short_a, short_b)
