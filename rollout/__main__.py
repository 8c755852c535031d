"""`python -m rollout ...` is the `rollout` command."""

import sys

from rollout.cli.main import main

sys.exit(main())
