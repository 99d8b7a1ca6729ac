"""The book's figure style and the figure helpers chapters call (one line per figure)."""

from .style import set_book_style

__all__ = ["set_book_style"]
