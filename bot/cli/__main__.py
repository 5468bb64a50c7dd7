"""`python -m bot.cli`: the lorebot command line."""

import sys

from bot.cli.main import main

sys.exit(main())
