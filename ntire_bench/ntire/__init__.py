"""Official NTIRE checkouts: ``select_model`` read statically into one reviewable declaration per team.

``importer`` reads a checkout, ``branch`` evaluates a ``select_model`` branch without running
it, ``files`` reads the team's files for the reviewer's notes, ``declaration`` is the YAML format,
``team`` builds the team's model (worker side), and ``slicing`` runs an organisers' function with
only the top-level statements of its file that it uses.
"""

from ntire_bench.ntire.importer import import_checkout, parse_checkout
from ntire_bench.ntire.declaration import DeclarationError, TeamDeclaration, read_declaration

__all__ = ["DeclarationError", "import_checkout", "parse_checkout", "read_declaration", "TeamDeclaration"]
