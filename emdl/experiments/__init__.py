"""Runnable experiments: ``python -m emdl.experiments.<name>``; each parses its arguments and calls
the library."""
