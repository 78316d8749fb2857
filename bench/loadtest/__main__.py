from bench.loadtest.run import main

raise SystemExit(main())
