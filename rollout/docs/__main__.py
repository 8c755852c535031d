"""`python -m rollout.docs [--check]`: write the generated reference pages, or check them."""

from __future__ import annotations

import argparse
import sys

from rollout.docs.generate import REPO, stale_outputs, write_outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollout.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated page is not current")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_outputs()
        for path in stale:
            print(f"{path.relative_to(REPO)} is not current: run python -m rollout.docs", file=sys.stderr)
        return 1 if stale else 0
    for path in write_outputs():
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
