from tickfan.cli import main

raise SystemExit(main())
