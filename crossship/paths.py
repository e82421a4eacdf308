"""Where crossship keeps its files by default."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crossship"


def default_db_path() -> Path:
    return data_dir() / "crossship.db"


def lock_path(db_path: Path) -> Path:
    """The lock file beside the database (never the database file itself)."""
    return db_path.with_name(db_path.name + ".lock")


def credentials_path(db_path: Path) -> Path:
    explicit = os.environ.get("CROSSSHIP_CREDENTIALS")
    return Path(explicit) if explicit else db_path.with_name("credentials.toml")
