"""Consoles for people: the alert follower."""
