"""File names that are not UTF-8, stored losslessly as text.

On POSIX a file name is bytes. Old cameras, Samba shares and Latin-1 era archives give names such as
``caf\\xe9.jpg`` that are not valid UTF-8; Python hands them over with *surrogate escapes*
(``'caf\\udce9.jpg'``), which no database text column accepts. :func:`to_text` turns such a name into
a storable string and :func:`from_text` turns it back, exactly:

* a name that is valid UTF-8 is stored as it is (every ordinary path, so existing indexes stay valid);
* an undecodable byte ``0xE9`` becomes ``"\\ufffdE9"``: the replacement character followed by the
  byte in hex, so the stored path reads as the name with replacement characters where the bad bytes
  were, and still says which bytes they were;
* a literal replacement character in a name is doubled (``"\\ufffd\\ufffd"``), which keeps the mapping
  one-to-one.
"""

from __future__ import annotations

import re

__all__ = ["from_text", "to_text"]

_MARK = "\ufffd"
_ESCAPED = re.compile("\ufffd(\ufffd|[89A-F][0-9A-F])")


def _needs_escape(path: str) -> bool:
    if _MARK in path:
        return True
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def to_text(path: str) -> str:
    """A file-system path (maybe holding surrogate escapes) as storable, printable text."""
    if path.isascii() or not _needs_escape(path):
        return path
    out = []
    for ch in path:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of the undecodable byte code - 0xDC00
            out.append(f"{_MARK}{code - 0xDC00:02X}")
        elif ch == _MARK:
            out.append(_MARK * 2)
        else:
            out.append(ch)
    return "".join(out)


def from_text(text: str) -> str:
    """The file-system path that :func:`to_text` stored as ``text`` (the identity for ordinary paths)."""
    if _MARK not in text:
        return text

    def unescape(m: re.Match[str]) -> str:
        code = m.group(1)
        return _MARK if code == _MARK else chr(0xDC00 + int(code, 16))

    return _ESCAPED.sub(unescape, text)
