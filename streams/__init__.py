"""What flows where: settings, the topic catalogue, sources, sinks and consoles."""
