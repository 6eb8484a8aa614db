"""Run the fault suite (tests/faults) and print README's table "Reliability: what was tried", one row per case.

Every row is written by the test that did the case, from what it observed in that run (the exact line the user saw,
what was on disk afterwards); a case whose test fails gives no row, and the script exits non-zero.

Usage: python benchmarks/fault_table.py [--readme]   (--readme: also replace the table in README.md)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"
#: the order of the table: by test file, then as the tests ran
ORDER = ("test_kill.py", "test_concurrent.py", "test_hostile_inputs.py", "test_batch_outputs.py")


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    lines = ["| case | what was done | what the user saw | on disk afterwards |", "|---|---|---|---|"]
    lines += [f"| {cell(r['case'])} | {cell(r['done'])} | {cell(r['saw'])} | {cell(r['disk'])} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="store_true", help="replace the table between the markers in README.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "rows.jsonl"
        env = {**os.environ, "VISIONKIT_FAULT_TABLE": str(record)}
        start = time.perf_counter()
        status = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"],
                                cwd=REPO, env=env).returncode
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()] if record.is_file() else []
    rank = {name: i for i, name in enumerate(ORDER)}
    rows.sort(key=lambda row: rank.get(row["test"].split("::")[0].rsplit("/", 1)[-1], len(ORDER)))  # stable
    text = table(rows)
    print(text)
    print(f"\n{len(rows)} rows from `python -m pytest tests/faults` ({seconds:.0f} s, exit {status})", file=sys.stderr)
    if args.readme and status == 0:
        readme = REPO / "README.md"
        content = readme.read_text(encoding="utf-8")
        head, _, rest = content.partition(BEGIN)
        _, _, tail = rest.partition(END)
        if not rest:
            print(f"README.md has no {BEGIN} … {END} markers", file=sys.stderr)
            return 1
        readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
