"""Small standard-library helpers every layer may use: where the harness lives, hashing, one-line messages.

Standard library only: the sandboxed worker imports this before numpy or torch.
"""

from ntire_bench.util.hashing import digest_json, sha256_file, sha256_tree
from ntire_bench.util.paths import IMPORT_ROOT, PACKAGE_DIR
from ntire_bench.util.text import did_you_mean, one_line, squash
from ntire_bench.util.version import __version__

__all__ = ["IMPORT_ROOT", "PACKAGE_DIR", "__version__", "did_you_mean", "digest_json", "one_line", "sha256_file",
           "sha256_tree", "squash"]
