"""`python -m mmresfamily.benchmark` (also how the benchmark starts its memory children)."""
from .cli import main

if __name__ == '__main__':
    main()
