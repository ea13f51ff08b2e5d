"""A faster stand-in for ``http.client.parse_headers`` in the recorder process.

The standard one runs every header block through ``email.parser``; in the recorder that was a
third of the CPU per exchange (docs/PERFORMANCE.md). This builds the same ``HTTPMessage``
(the ``email.policy.compat32`` result: names as sent, values with leading blanks and the line
end removed, folded lines kept) straight from the lines. It only shapes what attest *reads*
from headers; the WARC records keep the raw bytes as they came off the socket.
"""

from __future__ import annotations

import http.client
from typing import Any

_original = http.client.parse_headers


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    message = _class()
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("iso-8859-1")
        if line in ("\r\n", "\n", ""):
            break
        if line[0] in " \t":
            if pairs:  # a folded line: kept, line end included, in the value
                name, value = pairs[-1]
                pairs[-1] = (name, value + line)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue  # not a header line (email.parser would stop parsing here)
        pairs.append((name, value.lstrip(" \t")))
    message._headers = [(name, value.rstrip("\r\n")) for name, value in pairs]  # type: ignore[attr-defined]
    return message


class FastMessage(http.client.HTTPMessage):
    """An ``HTTPMessage`` whose lookups skip the email policy machinery.

    With the compat32 policy, the result is the same for latin-1 text (what HTTP headers are
    decoded as): the value as parsed. Used for the requests the recorder receives.
    """

    _headers: list[tuple[str, str]]

    def get(self, name: str, failobj: Any = None) -> Any:
        lname = name.lower()
        for key, value in self._headers:
            if key.lower() == lname:
                return value
        return failobj

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self._headers)

    def __delitem__(self, name: str) -> None:
        lname = name.lower()
        self._headers = [(k, v) for k, v in self._headers if k.lower() != lname]

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)


def install() -> None:
    """Use the fast parser for http.client and http.server in this process."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
