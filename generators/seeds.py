"""Per-partition random generators: each partition's stream depends only on the seed and its key."""

from __future__ import annotations

import hashlib

import numpy as np


def _key_words(parts: tuple[object, ...]) -> list[int]:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def partition_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator for one partition (e.g. ``("admissions", "H001", "2024-03")``), stable across runs and workers."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=_key_words(key)))
