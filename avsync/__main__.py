from avsync.cli import main

raise SystemExit(main())
