from lab.report import main

raise SystemExit(main())
