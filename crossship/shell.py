"""Words for the commands crossship suggests in its messages, safe to paste into a shell."""

from __future__ import annotations

import re
import shlex

# what a shell reads as part of a plain word: letters (Japanese too), digits and a few marks
_PLAIN = re.compile(r"[^\s'\"\\$`;&|<>()*?\[\]{}!#~^]+")


def word(text: str) -> str:
    """``text`` as one shell word: as it is when plain, else quoted (``'x;echo pwned'``)."""
    return text if _PLAIN.fullmatch(text) else shlex.quote(text)
