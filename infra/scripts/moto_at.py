"""moto's server with its clock started at a pinned instant.

`make test-clock` runs moto with the clock started at MOTO_CLOCK_AT (Unix
seconds) and running on from there, so what moto stamps (stream records,
SQS sent times and visibility) agrees with the pinned test binaries.

time-machine moves Python's wall-clock functions (time.time, datetime.now,
...) for every thread; monotonic clocks run as they are. libfaketime would
do the same from outside, but it slows a threaded Python server about
fourfold under concurrent requests (600 PutItems from 32 threads: 2.2 s
without it, 8 to 12 s with it), enough to time out the order test's
writes, which have 2 s an attempt.
"""

import os
import sys

import time_machine
from moto.server import main

if __name__ == "__main__":
    at = os.environ.get("MOTO_CLOCK_AT")
    if at:
        time_machine.travel(float(at), tick=True).start()
    sys.argv[0] = "moto_server"
    sys.exit(main())
