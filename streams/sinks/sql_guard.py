"""Checks that keep ad-hoc SQL against the audit store read-only."""

from __future__ import annotations

import re

from schemas.errors import ClinopsError

READ_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
# Quoted strings, quoted identifiers and comments, which may contain any character.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|--[^\n]*|/\*.*?\*/", re.DOTALL)


class ReadOnlyQueryError(ClinopsError):
    """An ad-hoc query would change the audit store or is not one plain statement."""


def read_only_query(sql: str) -> str:
    """Return ``sql`` with ``SETTINGS readonly = 1`` appended, or raise ReadOnlyQueryError.

    ClickHouse enforces the read-only setting itself: no INSERT, ALTER or DROP, and
    no table functions that reach files or the network. This function makes the
    setting cover the whole request, because it accepts only one statement without a
    SETTINGS or FORMAT clause of its own.

    >>> read_only_query("SELECT action, count() FROM audit_events GROUP BY action;")
    'SELECT action, count() FROM audit_events GROUP BY action SETTINGS readonly = 1'
    """
    statement = sql.strip().rstrip(";").strip()
    bare = _QUOTED.sub(" ", statement)
    if not statement:
        raise ReadOnlyQueryError("the query is empty; pass one SELECT statement")
    if ";" in bare:
        raise ReadOnlyQueryError("pass one statement at a time; the query contains ';'")
    first = bare.split(None, 1)[0].upper()
    if first not in READ_KEYWORDS:
        raise ReadOnlyQueryError(f"only reading statements ({', '.join(READ_KEYWORDS)}) are accepted, not {first}")
    if re.search(r"\b(SETTINGS|FORMAT)\b", bare, re.IGNORECASE):
        raise ReadOnlyQueryError("remove the SETTINGS or FORMAT clause; the store sets both itself")
    return f"{statement} SETTINGS readonly = 1"
