"""The jobs behind the ``emdl`` commands (convert, evaluate, predict): the top layer, which
parses nothing and is called by :mod:`emdl.cli` and from Python."""
