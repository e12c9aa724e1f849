"""Run by ``python -m ntire_bench.sandbox echo_report``: prints the report its own
``enter_from_environment`` call gets back (the one the sandbox entry point already applied)."""

import json
import os

from ntire_bench.sandbox import ENV_VAR, enter_from_environment

report = enter_from_environment()
print(json.dumps({"report": report.to_dict() if report else None, "env_cleared": ENV_VAR not in os.environ}))
