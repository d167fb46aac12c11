from rgpt2.cli import main

raise SystemExit(main())
