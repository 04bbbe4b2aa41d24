"""``python -m nndoctor`` runs the command line."""

from nndoctor.cli import main

if __name__ == "__main__":
    main()
