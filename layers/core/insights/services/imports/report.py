"""An import's error report: one part per slice, assembled into one CSV when it ends.

Each slice writes the rejections of its row range as a part; when the job
ends, the parts along the checkpoint chain are joined under a header. Used
by file imports and Salesforce syncs alike.
"""

from __future__ import annotations

import csv
import io

from aws_lambda_powertools import Logger

from insights.domain.core.attributes import Rejection
from insights.storage.imports import objects
from insights.storage.imports.jobs import Job

logger = Logger(child=True)

MAX_REPORT_LINES = 10_000
REPORT_HEADER = ("row", "column", "reason")


def report_key(job: Job) -> str:
    return f"reports/{job.account_id}/{job.import_id}.csv"


def parts_prefix(job: Job) -> str:
    return f"reports/{job.account_id}/{job.import_id}/parts/"


def _lines_csv(lines: list[Rejection], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(REPORT_HEADER)
    for line in lines:
        writer.writerow((line.row, _cell(line.column), _cell(line.reason)))
    return out.getvalue()


def _cell(text: str) -> str:
    """Column names come from the file: keep spreadsheets from running them as formulas."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_part(job: Job, start_row: int, end_row: int, lines: list[Rejection]) -> None:
    """Every slice leaves a part named by its row range, even an empty one.

    Two runners of the same slice may stop at different rows; only the one
    whose checkpoint won continues the chain, and the report follows the
    chain of parts from the first data row to the last (any path gives the
    same lines: a row's verdict does not depend on who read it).
    """
    key = f"{parts_prefix(job)}{start_row:012d}-{end_row:012d}.csv"
    objects.put_text(job.bucket, key, _lines_csv(lines))


def assemble_report(job: Job, first_row: int, last_row: int, total_rejected: int) -> None:
    edges: dict[int, list[tuple[int, str]]] = {}
    for key in objects.list_keys(job.bucket, parts_prefix(job)):
        name = key.rsplit("/", 1)[-1].removesuffix(".csv")
        start, _, end = name.partition("-")
        edges.setdefault(int(start), []).append((int(end), key))
    path = _chain(edges, first_row, last_row)
    out = io.StringIO()
    out.write(_lines_csv([], header=True))
    written = 0
    for key in path:
        for line in objects.read_text(job.bucket, key).splitlines(keepends=True):
            if written >= MAX_REPORT_LINES:
                break
            out.write(line)
            written += 1
    if total_rejected > written:
        out.write(
            _lines_csv(
                [Rejection(0, "", f"{total_rejected - written} more rejected rows not listed")]
            )
        )
    objects.put_text(job.bucket, report_key(job), out.getvalue())


def _chain(edges: dict[int, list[tuple[int, str]]], start: int, end: int) -> list[str]:
    """Part keys from `start` to `end` row (depth-first: stale parts lead nowhere)."""
    stack: list[tuple[int, list[str]]] = [(start, [])]
    seen: set[int] = set()
    while stack:
        row, path = stack.pop()
        if row == end and (path or start == end):
            return path
        if row in seen:
            continue
        seen.add(row)
        for next_row, key in sorted(edges.get(row, [])):
            if next_row > row or (next_row == end and not path):
                stack.append((next_row, [*path, key]))
    raise RuntimeError("the report's parts do not cover the file: slices are missing")


def cleanup(job: Job) -> None:
    try:
        objects.delete_keys(job.bucket, objects.list_keys(job.bucket, parts_prefix(job)))
    except Exception:  # parts expire with the reports anyway
        logger.exception("could not delete report parts")
