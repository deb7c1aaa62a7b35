import sys

from airda.cli import main

sys.exit(main())
