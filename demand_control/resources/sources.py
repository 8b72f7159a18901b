"""Where signals come from: an interface the ingestion assets read, with one implementation per source.

The file drop (one CSV or Parquet file per canonical object, as ERP/WMS/CRM exports arrive) is the
embedded default and reads the generated sample landscape; the Tryton adapter implements the same
interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from demand_control.infra import settings
from demand_control.schema.contracts import CONTRACTS

FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz")


class FeedMissingError(FileNotFoundError):
    """The source has no feed for a canonical object."""


@dataclass(frozen=True)
class Extract:
    """One object's feed exactly as the source delivered it, with where and when it came from."""

    object_name: str
    frame: pd.DataFrame
    source_system: str
    source_uri: str
    modified_at: datetime | None
    mode: Literal["snapshot", "incremental"] = "snapshot"
    cursor: str | None = None  # the source's high-water mark after this extract, for the next one
    removed: pd.DataFrame | None = None  # key columns of rows the source no longer holds as open


class SignalSource(dg.ConfigurableResource):
    """A system the canonical objects are extracted from."""

    source_system: ClassVar[str] = "unknown"

    def extract(self, object_name: str, since: str | None = None) -> Extract:
        """The object's feed; `since` is the cursor of the last extract for sources that deliver changes only."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class FileDropSource(SignalSource):
    """A folder with one `<object>.parquet` or `<object>.csv` per canonical object (an export drop)."""

    source_system: ClassVar[str] = "file_drop"

    folder: str = Field(
        default="",
        description="Folder of the file drop; empty: the sample landscape in the state folder.",
    )

    @property
    def path(self) -> Path:
        return Path(self.folder).resolve() if self.folder else settings.default_landscape_folder()

    def describe(self) -> str:
        return f"file drop {self.path}"

    def feed_file(self, object_name: str) -> Path:
        if object_name not in CONTRACTS:
            raise KeyError(f"unknown canonical object {object_name!r}")
        for suffix in FILE_SUFFIXES:
            candidate = self.path / f"{object_name}{suffix}"
            if candidate.exists():
                return candidate
        names = ", ".join(f"{object_name}{s}" for s in FILE_SUFFIXES)
        raise FeedMissingError(f"feed {object_name}: none of {names} in the file drop {self.path}")

    def extract(self, object_name: str, since: str | None = None) -> Extract:
        # A file drop is always a full snapshot; `since` does not apply.
        path = self.feed_file(object_name)
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.stat().st_size == 0:
            frame = pd.DataFrame()
        else:
            # Text as delivered: typing and validation happen in staging, where failures are quarantined.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return Extract(object_name, frame, "file_drop", str(path), modified)
