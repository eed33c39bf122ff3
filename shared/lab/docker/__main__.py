from lab.docker import main

raise SystemExit(main())
