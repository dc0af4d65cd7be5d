import sys

from meterlab.cli import main

sys.exit(main())
