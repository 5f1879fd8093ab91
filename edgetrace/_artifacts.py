"""Artifact identity: the one sha256 of a model file, a policy file or a Python policy.

The manifest names a session's models and policies by hash, and every `infer`/`decide` span
carries the hash of what it ran, so a replay can say exactly which artifact changed. Those
hashes must agree: a file is hashed as bytes (never as decoded text, which would fold CRLF
line ends), a Python callable by its source text.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from typing import Any

__all__ = ["callable_sha256", "file_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def callable_sha256(func: Callable[..., Any]) -> str:
    """A Python policy or model function, by its source (its qualified name when there is none)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        source = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"
    return hashlib.sha256(source.encode()).hexdigest()
