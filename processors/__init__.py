"""The Faust app, its stages, and the clinical logic they call as plain functions."""
