"""Rebuild a run folder's page: ``python scripts/report.py RUN_DIR`` writes RUN_DIR/index.html again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import InputError  # noqa: E402
from report.page import build_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Build the page; 0 on success, 2 with one line when the folder is not a usable run folder."""
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. reports/load-20261121-101500")
    options = parser.parse_args(argv)
    try:
        page = build_report(options.run_dir)
    except InputError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 2
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
