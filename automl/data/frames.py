"""Reading a CSV or Parquet file into a DataFrame, for every loader that takes columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from automl.errors import DataError


def read_frame(source: str) -> pd.DataFrame:
    """Read a CSV or Parquet file; unreadable files raise ``DataError`` naming them."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{source}: data file not found")
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{source}: cannot read as a table: {str(exc).splitlines()[0]}") from None
