"""``python -m ntire_bench.cluster``: the Ray resources this machine should advertise (docs/ray.md).

`ray start ... --resources "$(python -m ntire_bench.cluster)"`
"""

import json

from ntire_bench.cluster.node import node_resources

if __name__ == "__main__":
    print(json.dumps(node_resources()))
