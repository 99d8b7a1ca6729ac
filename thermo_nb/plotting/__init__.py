"""The book's figure style, table formatting, and the figure helpers chapters call (one
module per chapter, ``plotting/<chapter>.py``, so a figure cell is one line)."""

from .source import show_source
from .style import set_book_style
from .tables import format_significant, format_table

__all__ = ["format_significant", "format_table", "set_book_style", "show_source"]
