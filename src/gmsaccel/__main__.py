import sys

from gmsaccel.cli import main

sys.exit(main())
