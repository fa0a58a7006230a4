"""Bridges to other systems, each behind its own optional extra and imported only by name.

    from tinyminilm.integrations.ray import TinyMiniLMEmbedder, embed_corpus   # pip install 'tinyminilm[ray]'

Nothing here is imported by `import tinyminilm`.
"""
