"""The one Markdown table writer of the reports and benchmarks."""
from typing import Iterable, Optional, Sequence


def markdown_table(header: Sequence[str],
                   rows: Iterable[Sequence[object]],
                   align: Optional[str] = None) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
        header (Sequence[str]): Column titles.
        rows (Iterable[Sequence]): Cells of each row, turned to text with
            ``str``; a ``|`` in a cell is escaped so that it cannot split
            the row.
        align (str, optional): One letter per column, ``'l'`` or ``'r'``
            (right-aligned numbers); default: no alignment marks.

    Returns:
        str: The table, one line per row, without a final newline.
    """
    marks = {'l': '---', 'r': '---:'}
    rule = [marks[a] for a in align] if align else ['---'] * len(header)

    def line(cells: Sequence[object]) -> str:
        return '| ' + ' | '.join(str(c).replace('|', '\\|')
                                 for c in cells) + ' |'

    return '\n'.join([line(header), '|' + '|'.join(rule) + '|'] +
                     [line(row) for row in rows])
