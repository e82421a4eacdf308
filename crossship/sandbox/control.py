"""What the sandboxes' control APIs (``/_sandbox/...``) share."""

from __future__ import annotations

from crossship import i18n


def error_text(exc: Exception) -> str:
    """A refused control call's reason for its HTTP client: in English whatever the language
    of the process serving it, as the rest of the control API (tests and scripts read it; the
    same call raised in process speaks the reader's language)."""
    kept = getattr(exc, "kept", None)
    return i18n.render(kept, "en") if kept is not None else str(exc)
