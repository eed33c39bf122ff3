from lab.bench.run import main

raise SystemExit(main())
