"""Event sinks: the ClickHouse audit store, embedded (chDB) or on a server."""
