"""Rewrite the README's configuration table from the Settings fields (tests/test_config.py checks it).

    .venv/bin/python scripts/readme-settings.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assist.config import settings_table  # noqa: E402

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not block.search(text):
        sys.exit(f"README.md has no {START} ... {END} block")
    readme.write_text(block.sub(lambda _: f"{START}\n{settings_table()}\n{END}", text), encoding="utf-8")
    print("README.md: configuration table regenerated")


if __name__ == "__main__":
    main()
