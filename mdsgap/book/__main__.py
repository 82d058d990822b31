"""`python -m mdsgap.book`: build the book (`mdsgap.book.build.main`)."""
import sys

from mdsgap.book.build import main

sys.exit(main())
