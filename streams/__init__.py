"""Data flow: settings, the topic catalogue, sources, sinks and consoles."""
