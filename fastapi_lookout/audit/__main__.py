"""``python -m fastapi_lookout.audit``: the same as the ``fastapi-lookout-audit`` command."""

import sys

from fastapi_lookout.audit.cli import main

sys.exit(main())
