import sys

from liqlab.app.cli import main

sys.exit(main())
