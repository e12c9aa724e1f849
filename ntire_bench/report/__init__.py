"""Leaderboard writers: CSV, Markdown, JSON, a self-contained HTML page and the PSNR-vs-runtime plot; a
participant's factsheet table.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "tables": ["format_table", "to_json", "to_markdown"],
    "files": ["write_leaderboard"],
    "html": ["to_html"],
    "factsheet": ["FactsheetError", "build_factsheet", "factsheet_text"],
})
