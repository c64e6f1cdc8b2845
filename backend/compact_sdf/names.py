"""The one rule for user-chosen names (shapes, meshes, result files): safe as a file name anywhere.

Letters, digits, ``_``, ``-`` and ``.``, 1 to 64 characters, starting with a letter or digit (so
never ``.``, ``..`` or a hidden file) and without ``..``. The service's schemas state the pattern;
``check_name`` enforces it where names arrive another way (query strings, codes files).
"""

from __future__ import annotations

import re

from compact_sdf.errors import InputError

# No ".." without a look-ahead (JSON Schema validators and pydantic's regex engine lack it): a dot is
# followed by another character or ends the name. The length is its own limit, ``NAME_MAX``.
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"
NAME_MAX = 64
NAME_RULE = "1-64 letters, digits, '_', '-' or '.' starting with a letter or digit, without '..'"
_NAME_RE = re.compile(NAME_PATTERN)


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a safe name, else raise ``InputError`` saying what is allowed."""
    if not isinstance(value, str) or len(value) > NAME_MAX or not _NAME_RE.fullmatch(value):
        raise InputError(f"invalid {what} {value!r}: use {NAME_RULE}")
    return value
