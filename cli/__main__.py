"""``python -m cli``: the ``attest`` command, as the tests and benchmarks run it."""

import sys

from cli import main

sys.exit(main())
