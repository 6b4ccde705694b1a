from mediabot.cli import main

raise SystemExit(main())
