"""Token counts of the inputs, and the too-long check of `truncate: false`."""

from __future__ import annotations

from typing import Any

from .errors import ApiError


class TokenCounter:
    """Counts tokens as the model will see them ([CLS] … [SEP], truncated at max_seq_length).

    `model.token_ids` truncates, so a text that reaches the limit exactly may or may not be longer; only for those
    texts the whole text is tokenized once more without truncation to find out.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.limit = model.max_seq_length

    def count(self, texts: list[str], truncate: bool, field: str, single: bool, how_to_truncate: str) -> list[int]:
        """Token counts of texts; with truncate=False a text over the limit is a 413 naming `field` (single
        string) or `field[i]`."""
        counts = [len(ids) for ids in self.model.token_ids(texts)]
        if not truncate:
            for i, n in enumerate(counts):
                if n >= self.limit:
                    full = self.model.untruncated_length(texts[i])
                    if full > self.limit:
                        name = field if single else f"{field}[{i}]"
                        raise ApiError(413, f"`{name}` has {full} tokens, more than the model's limit of "
                                            f"{self.limit} (max_input_length); send a shorter text, or "
                                            f"{how_to_truncate} to embed its first {self.limit} tokens",
                                       param=name, code="input_too_long")
        return counts
