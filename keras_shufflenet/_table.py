"""Aligned text tables, as the command line prints them."""


def aligned(header, rows, left=2):
    """The lines of a table: `header`, a rule, then `rows` (cells are text);
    the first `left` columns aligned left, the others right, two spaces apart."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row):
        cells = [cell.ljust(width) for cell, width in zip(row[:left], widths)]
        cells += [cell.rjust(width) for cell, width in zip(row[left:], widths[left:])]
        return "  ".join(cells).rstrip()

    return [line(header), line(["-" * width for width in widths]), *map(line, rows)]
