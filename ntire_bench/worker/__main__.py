"""The worker process (``python -m ntire_bench.sandbox ntire_bench.worker``): the only process that runs submission code."""

import ctypes
import os
import sys
from typing import NoReturn

from ntire_bench.sandbox import enter_from_environment
from ntire_bench.worker.protocol import Request
from ntire_bench.worker.session import Session, serve

_HARNESS_STREAMS: list = []  # sys.stdout and sys.stderr as the harness set them up


def main() -> None:
    """Child entry point: apply the sandbox, then answer requests on the protocol pipe until told to exit (or the
    pipe closes); the process then ends at once (``_exit_now``)."""
    enter_from_environment()
    # The protocol pipes are the fds named in the environment; stdout goes to the log (stderr),
    # so anything a plugin prints never reaches the parent as a reply.
    request_fd = int(os.environ.pop("NTIRE_BENCH_REQUEST_FD"))
    reply_fd = int(os.environ.pop("NTIRE_BENCH_REPLY_FD"))
    os.dup2(2, 1)
    _HARNESS_STREAMS[:] = [sys.stdout, sys.stderr]  # before any submission code can replace them
    requests = os.fdopen(request_fd, "rb", buffering=0)
    session = Session()
    buffer = b""
    while True:
        chunk = requests.read(1 << 16)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            request = Request.decode(line)
            if request.op == "exit":
                _exit_now()
            reply = serve(session, request)
            view = memoryview(reply)
            while view:
                written = os.write(reply_fd, view)
                view = view[written:]
    _exit_now()


def _exit_now() -> NoReturn:
    """End the process without the interpreter's teardown (half a second with torch loaded, on every close): the
    parent has everything it needs, and whatever the submission's code registered to run at exit has no one to
    serve. What was printed is flushed to the log first: the harness's own streams, any the submission put in their
    place, and C's stdio buffers (an extension's printf)."""
    try:
        for stream in [*_HARNESS_STREAMS, sys.stdout, sys.stderr]:  # the same stream flushed twice: no harm
            try:
                stream.flush()
            except BaseException:  # a stream the submission closed or replaced, or a flush that raises SystemExit
                pass
        try:
            ctypes.CDLL(None).fflush(None)
        except BaseException:
            pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
