"""Command-line sub-apps, one module per capability; :mod:`nndoctor.cli` assembles them."""
