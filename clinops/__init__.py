"""The clinops command line: broker, worker, feeds, consoles, audit SQL and the demo."""
