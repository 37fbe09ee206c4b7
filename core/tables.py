"""Result tables as files users download: a list of row dicts -> CSV text.

Column order is the first row's key order; values are written with ``csv``'s quoting, so a
class name holding a comma or a quote stays one cell."""

from __future__ import annotations

import csv
import io
from typing import Sequence


def rows_csv(rows: Sequence[dict]) -> str:
    """CSV text with a header row; empty text for no rows."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
