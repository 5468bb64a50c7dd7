"""The bounds of every path and query parameter: out of range is a 400, never a 500.

SQLite's integers are 64-bit; a number past that raises OverflowError deep in
the driver, and a 50,000-character LIKE pattern costs a scan per character.
Every route takes its parameters through these annotated types.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

#: The largest integer SQLite (and PostgreSQL's bigint) stores.
MAX_INT64 = 2**63 - 1
#: A page of the series list holds at most this many rows.
MAX_LIMIT = 1000
#: Deeper than this no one pages by hand; it also keeps OFFSET cheap.
MAX_OFFSET = 1_000_000
#: RFC 5322 lines are at most 998 characters; a Message-ID is on one.
MAX_MSGID = 998
MAX_FILTER = 200  # a list name, an author, a state
MAX_LOG_PATH = 1024

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
State = Annotated[str, Query(max_length=MAX_FILTER, description="series state")]
ListName = Annotated[str, Query(alias="list", max_length=MAX_FILTER, description="list name")]
Author = Annotated[str, Query(max_length=MAX_FILTER, description="part of name or address")]
MsgId = Annotated[str, Path(min_length=1, max_length=MAX_MSGID, description="Message-ID")]
RunId = Annotated[int, Path(ge=1, le=MAX_INT64, description="run id")]
LogPath = Annotated[
    str, Path(min_length=1, max_length=MAX_LOG_PATH, description="file in the run's logs")
]
