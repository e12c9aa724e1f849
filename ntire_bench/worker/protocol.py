"""The parent/worker protocol: typed messages, one JSON object per line, read against a deadline.

Every request carries a sequence number and a fresh random nonce; the reply must echo both
and be of the type the request expects. The parent reads replies from a non-blocking pipe
with a byte cap and a deadline, so a worker that sends half a line and sleeps, floods the
pipe, or answers out of turn fails that submission alone with a clear reason, and
``--timeout`` always holds. Whatever a reply says is a claim for the parent to check
(docs/isolation.md), never a fact.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import selectors
import time
from dataclasses import dataclass, field
from typing import Any
from ntire_bench.util.text import squash

# A reply holds at most a few thousand numbers (timing samples and output probes).
MAX_REPLY_BYTES = 4 * 2**20


class WorkerFailure(Exception):
    """A submission failed; ``str(exc)`` is the one-line reason recorded in its results."""


class ProtocolError(Exception):
    """The worker broke the protocol; the message is the one-line reason recorded for it."""


class Deadline(Exception):
    """No complete reply arrived before the deadline."""


@dataclass
class Request:
    """A request to the worker: ``op`` and its arguments, stamped with a sequence number and a nonce."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))

    def encode(self) -> bytes:
        return (json.dumps({"op": self.op, "seq": self.seq, "nonce": self.nonce, **self.args},
                           allow_nan=False) + "\n").encode()

    @staticmethod
    def decode(line: bytes | str) -> "Request":
        """Parse a request on the worker side (the parent is trusted; a malformed line is a bug)."""
        data = json.loads(line)
        op, seq, nonce = data.pop("op"), data.pop("seq"), data.pop("nonce")
        return Request(op=op, args=data, seq=seq, nonce=nonce)


# What each request's reply must hold: field -> accepted Python types.
REPLY_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "load": {"result": (dict,)},
    "begin_dataset": {},
    "end_dataset": {"result": (dict,)},
    "image": {"warmup": (int,), "warmup_ms": (list,), "spread": (int, type(None))},
    "time": {"samples": (list,), "leading": (int,), "stop_reason": (str,), "clocks_replaced": (str, type(None)),
             "num_threads": (int,)},
    "challenge": {"outputs": (list,), "reference": (list,)},
    "discover": {"result": (list,)},
    "count": {"result": (dict,)},
    "executed": {"macs": (int,)},
    "claim": {"result": (dict,)},
    "ping": {},
    "bare": {},
}


@dataclass
class Reply:
    """A validated reply: ``ok`` with its fields, or the worker's one-line ``error``."""

    ok: bool
    fields: dict[str, Any]
    error: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


def encode_reply(request: Request, ok: bool, error: str | None = None, **fields: Any) -> bytes:
    """The worker's reply to ``request`` as one line of bytes."""
    body = {"seq": request.seq, "nonce": request.nonce, "op": request.op, "ok": ok, **fields}
    if error is not None:
        body["error"] = error
    return (json.dumps(body, allow_nan=False) + "\n").encode()


def parse_reply(line: bytes, request: Request) -> Reply:
    """Check a reply line against the request it must answer; raise ProtocolError otherwise."""
    preview = line[:80]
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"the worker sent a malformed reply: {preview!r}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"the worker sent a malformed reply: {preview!r}")
    if data.get("seq") != request.seq or data.get("nonce") != request.nonce or data.get("op") != request.op:
        raise ProtocolError(f"the worker sent a forged or out-of-order reply to '{request.op}' "
                            f"(sequence {data.get('seq')!r}, expected {request.seq})")
    if data.get("ok") is False:
        error = data.get("error")
        if not isinstance(error, str) or not error.strip():
            raise ProtocolError("the worker reported a failure without a reason")
        return Reply(ok=False, fields={}, error=squash(error)[:2000])
    if data.get("ok") is not True:
        raise ProtocolError(f"the worker's reply to '{request.op}' has no ok field")
    expected = REPLY_FIELDS.get(request.op, {})
    fields = {}
    for name, types in expected.items():
        value = data.get(name)
        if name not in data or not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise ProtocolError(f"the worker's reply to '{request.op}' has a missing or invalid '{name}'")
        fields[name] = value
    return Reply(ok=True, fields=fields)


def finite_numbers(values: Any, what: str, minimum: float | None = None) -> list[float]:
    """``values`` as a list of finite floats (>= ``minimum``); ProtocolError naming ``what`` otherwise."""
    if not isinstance(values, list):
        raise ProtocolError(f"the worker's {what} is not a list")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProtocolError(f"the worker's {what} holds a value that is not a finite number: {value!r}")
        if minimum is not None and value < minimum:
            raise ProtocolError(f"the worker's {what} holds {value!r}, below {minimum}")
        out.append(float(value))
    return out


class LineReader:
    """Read newline-terminated replies from a pipe without ever blocking past a deadline."""

    def __init__(self, fd: int, max_bytes: int = MAX_REPLY_BYTES):
        self.fd = fd
        self.max_bytes = max_bytes
        self.buffer = b""
        os.set_blocking(fd, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def read_line(self, deadline: float) -> bytes:
        """The next complete line; raise Deadline at ``deadline`` (monotonic seconds), EOFError at end."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > self.max_bytes:
                raise ProtocolError(f"the worker sent a reply longer than {self.max_bytes} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(timeout=remaining):
                raise Deadline()
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError()
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        if len(line) > self.max_bytes:
            raise ProtocolError(f"the worker sent a reply longer than {self.max_bytes} bytes")
        return line

    def pending(self) -> bool:
        """True when bytes arrived that no request asked for (an unsolicited or forged write)."""
        if self.buffer:
            return True
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            return False
        self.buffer += chunk
        return bool(chunk)

    def close(self) -> None:
        self.selector.close()
