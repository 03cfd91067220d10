import sys

from liqlab.cli import main

sys.exit(main())
