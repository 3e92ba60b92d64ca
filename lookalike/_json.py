"""One converter from the values a table row can hold to what :func:`json.dumps` can write.

Used by the web API (row values and ids), the CLI's ``--json`` output (as ``json.dumps``'s
``default``) and :meth:`lookalike.duplicates.DuplicateGroup.to_dict`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_jsonable(value: Any, *, by_attribute: bool = False, keep_unknown: bool = False) -> Any:
    """``value`` as plain JSON data.

    Dates and times become ISO strings, numpy arrays lists and numpy scalars Python numbers, bytes a
    ``"<N bytes>"`` placeholder (never their content), ``Decimal`` a float, mappings and lists are
    converted item by item (mapping keys become strings), and anything else (``UUID``, ``Path``,
    sets...) becomes ``str(value)``.

    Two options keep what the CLI and :meth:`~lookalike.duplicates.DuplicateGroup.to_dict` have
    always written:

    * ``by_attribute``: recognise dates by an ``isoformat`` method and arrays by a ``tolist`` method
      (so a ``memoryview`` becomes a list of ints), with no special case for ``Decimal`` (written as
      ``str``), mappings or lists (``json.dumps`` walks those itself when this is its ``default``).
    * ``keep_unknown``: convert only numpy scalars, dates and bytes; return anything else unchanged.
    """
    if isinstance(value, (bytes, bytearray)) or (not by_attribute and isinstance(value, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)) or (by_attribute and hasattr(value, "isoformat")):
        return value.isoformat()
    if keep_unknown:
        return value
    if isinstance(value, np.ndarray) or (by_attribute and hasattr(value, "tolist")):
        return value.tolist()
    if not by_attribute:
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, Mapping):
            return {str(k): to_jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [to_jsonable(v) for v in value]
    return str(value)
