"""Where events come to rest: the ClickHouse audit store (embedded chDB or a server)."""
