"""``python -m synthex_client`` runs the ``synthex`` command line."""

import sys

from synthex_client.cli import main

sys.exit(main())
