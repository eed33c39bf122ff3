from lab.loadtest import main

raise SystemExit(main())
