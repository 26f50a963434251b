from monitor.simulator.demo.run import main

raise SystemExit(main())
