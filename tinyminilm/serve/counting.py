"""Token counts of the inputs (texts, or (query, text) pairs), and the too-long check of `truncate: false`."""

from __future__ import annotations

from typing import Any

from .errors import ApiError


class TokenCounter:
    """Counts tokens as the model will see them ([CLS] … [SEP], truncated at max_seq_length).

    model: a SentenceEncoder (items are texts) or a CrossEncoder (items are pairs); both have `token_ids`,
    `untruncated_length` and `max_seq_length`. `model.token_ids` truncates, so an item that reaches the limit
    exactly may or may not be longer; only for those items the whole item is tokenized once more to find out.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.limit = model.max_seq_length

    def count(self, items: list, truncate: bool, field: str, single: bool, how_to_truncate: str,
              what: str = "") -> list[int]:
        """Token counts of items; with truncate=False an item over the limit is a 413 naming `field` (single
        string) or `field[i]`, followed by `what` (e.g. " with the query")."""
        counts = [len(ids) for ids in self.model.token_ids(items)]
        if not truncate:
            for i, n in enumerate(counts):
                if n >= self.limit:
                    full = self.model.untruncated_length(items[i])
                    if full > self.limit:
                        name = field if single else f"{field}[{i}]"
                        raise ApiError(413, f"`{name}`{what} has {full} tokens, more than the model's limit of "
                                            f"{self.limit} (max_input_length); send a shorter text, or "
                                            f"{how_to_truncate} to have it cut to {self.limit} tokens",
                                       param=name, code="input_too_long")
        return counts
