"""Line reading shared by trec_eval's prefs, qrels_prefs and qrels_jg readers (``get_prefs.c`` and kin).

Every line must have exactly N whitespace-separated fields (C ``isspace``); a blank line is
malformed. A line whose first byte is ``#`` is a comment, and trec_eval then reads the next line
as data whatever it holds (so a second consecutive comment line is parsed as data). A comment
as the last line makes trec_eval read past its buffer: refused.
"""
from __future__ import annotations

from auditor.errors import DataError


def read_fields(path: str, what: str, n: int, form: str) -> list[tuple[int, list[bytes]]]:
    """(file line number, fields) for every data line. Raises DataError naming the line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{what} file {path!r}: cannot read it ({e.strerror or e}).") from None
    if not data:
        raise DataError(f"{what} file {path!r} is empty (trec_eval refuses it); give lines of the form {form}.")
    if b"\x00" in data:
        raise DataError(f"{what} file {path!r} contains a NUL byte; trec_eval reads it as a C string and its "
                        "parse is undefined there. Remove it.")
    if not data.endswith(b"\n"):
        data += b"\n"
    lines = data.split(b"\n")[:-1]
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(b"#"):
            i += 1
            if i >= len(lines):
                raise DataError(f"{what} file {path!r} ends with a comment line (line {i}): trec_eval 10.0-rc3 "
                                "then reads past the end of its buffer. Remove that line or add a data line after it.")
        tok = lines[i].split()
        if len(tok) != n:
            raise DataError(f"{what} file {path!r}, line {i + 1}: expected {form}, found {len(tok)} field(s) "
                            f"(trec_eval: 'Malformed line {len(out) + 1}'). Fix or delete that line (blank lines "
                            "are not allowed; a comment line is one starting with '#', and the line after a comment "
                            "is always read as data).")
        out.append((i + 1, tok))
        i += 1
    return out
