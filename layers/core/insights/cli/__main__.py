"""`python -m insights.cli`: the same as the `insights` command."""

import sys

from insights.cli.main import main

sys.exit(main())
