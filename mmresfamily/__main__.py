"""`python -m mmresfamily`: see mmresfamily/cli.py."""
from .cli import main

if __name__ == "__main__":
    main()
