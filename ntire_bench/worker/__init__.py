"""The submission's process: the protocol, the parent's client, and the session that runs team code.

The parent imports ``protocol`` and ``client`` only; ``session``, ``loading`` and ``build`` run
team code and are imported by the worker process (``python -m ntire_bench.worker`` under the
sandbox) and by ``--no-isolation`` runs.
"""

from ntire_bench.worker.protocol import ProtocolError, WorkerFailure
from ntire_bench.worker.client import InProcessWorker, IsolatedWorker, WorkerLimits

__all__ = ["InProcessWorker", "IsolatedWorker", "ProtocolError", "WorkerFailure", "WorkerLimits"]
