from s2s.cli import main
import sys

sys.exit(main())
