"""`python -m eval.bench`: see eval/bench/__init__.py."""

import sys

from eval.bench import main

sys.exit(main())
