"""Bedside feeds: the PhysioNet 2019 replay and the live simulator."""
