"""``python -m scim_desktop`` is the same as the ``scim-desktop`` command."""

import sys

from scim_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
