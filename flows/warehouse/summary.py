"""The per-file summary of a batch load, as plain text (no values, only names, counts and messages)."""

from __future__ import annotations

from flows.warehouse.model import BatchResult

_HEADERS = ("file", "source", "rows in file", "loaded", "rejected", "outcome", "message")


def render_summary(result: BatchResult) -> str:
    """A table with one line per file, then the batch outcome and any notes."""
    rows = [
        (
            o.file,
            o.source or "-",
            "-" if o.rows_in_file is None else str(o.rows_in_file),
            str(o.rows_loaded),
            str(o.rows_rejected),
            o.outcome,
            o.message,
        )
        for o in result.files
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_HEADERS[:-1])]
    numeric = {2, 3, 4}

    def line(cells: tuple[str, ...]) -> str:
        padded = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join([*padded, cells[-1]]).rstrip()

    out = [
        f"batch {result.batch_id} ({result.folder})",
        line(_HEADERS),
        line((*("-" * w for w in widths), "-------")),
    ]
    out += [line(r) for r in rows]
    out.append("")
    out.append(result.message)
    out += [f"note: {note}" for note in result.notes]
    return "\n".join(out)
