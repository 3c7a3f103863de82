"""`python -m goldiff` runs the command line."""

from goldiff.cli import main

if __name__ == "__main__":
    main()
