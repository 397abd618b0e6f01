"""CSV and Parquet files hold tables, text or time series: ``--text-column`` picks text, ``--window`` a series.

``automl.data._ensure_registered`` puts this loader before the plain table loader, so it sees these files first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automl.data import Dataset, register_loader
from automl.data.frames import read_frame
from automl.errors import DataError

__all__ = ["load_columns_file", "read_frame"]


def _is_columns_file(source: str) -> bool:
    from automl.data.tabular import TABLE_SUFFIXES

    return Path(source).suffix.lower() in TABLE_SUFFIXES


@register_loader(_is_columns_file)
def load_columns_file(
    source: str,
    text_column: str | None = None,
    window: int | None = None,
    family: str | None = None,
    **options: Any,
) -> Dataset:
    """Text when ``text_column`` is given, a series when ``window`` is, else a table."""
    if text_column is not None:
        from automl.data.text import load_text_file

        return load_text_file(source, text_column=text_column, **options)
    if window is not None:
        from automl.data.series import load_series_file

        return load_series_file(source, window=window, **options)
    from automl.data._common import family_kinds

    kinds = family_kinds(family)
    if kinds and "table" not in kinds and kinds & {"text", "series"}:
        raise DataError(
            f"{source}: family '{family}' takes {', '.join(sorted(kinds))} data, not tables; "
            "for a CSV pass --text-column COLUMN (text) or --window N (time series)"
        )
    from automl.data.tabular import load_table_file

    return load_table_file(source, **options)
