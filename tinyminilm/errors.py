"""tinyminilm's exceptions. Each message names the file or argument, says what is wrong and what to do."""

from __future__ import annotations


class TinyMiniLMError(Exception):
    """Base class of every error tinyminilm raises on purpose."""


class ConfigError(TinyMiniLMError, ValueError):
    """A model folder's JSON configuration is missing, malformed or describes an unsupported model."""


class WeightsError(TinyMiniLMError, ValueError):
    """model.safetensors is corrupt, truncated, or does not match config.json."""


class TokenizerError(TinyMiniLMError, ValueError):
    """tokenizer.json is missing or cannot be loaded."""


class IntegrityError(TinyMiniLMError, OSError):
    """A model file's SHA-256 differs from the pinned manifest."""


class DownloadError(TinyMiniLMError, OSError):
    """No source could provide the model files."""


class InputError(TinyMiniLMError, ValueError):
    """An input file is missing, undecodable, malformed, lacks the requested field or column, or is empty."""
