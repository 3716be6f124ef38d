#!/usr/bin/env python3
"""Anti-fraud call screening, warning dialer and after-hours hotline.

    python run_dialer.py [run|check-config|screen|blocklist …] [-c sip_config/dialer.yaml]
"""

import sys

from commands import main

if __name__ == "__main__":
    sys.exit(main())
