"""Log lines as `time level logger: message key=value ...`, for `lorebot serve`."""

from __future__ import annotations

import logging

#: Extra record fields printed by KeyValueFormatter, in this order.
LOG_FIELDS = ("worker", "series_id", "msgid", "step", "list", "seconds")


class KeyValueFormatter(logging.Formatter):
    """`time level logger: message key=value ...` lines, with the series and step when given."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = []
        for key in LOG_FIELDS:
            value = getattr(record, key, None)
            if value is None or value == "":
                continue
            text = str(value)
            if not text or any(c in text for c in ' "='):
                text = '"' + text.replace('"', '\\"') + '"'
            pairs.append(f"{key}={text}")
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # keep tracebacks after the pairs
        return f"{head} {' '.join(pairs)}{sep}{tail}"
