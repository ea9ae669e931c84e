# A "server" for the logs tests: once DIR/go exists, writes numbered lines ("%09d\n") to stdout
# (llmctl's O_APPEND log fd) as fast as it can until DIR/stop exists, then records the last
# number and the longest single write() in DIR/finished, and idles until stopped. It stops writing
# at 10,000,000 lines (100 MB): a fast machine writes about half that while the test rotates, and
# a slow build (the sanitizers: ~200 ms a command) would otherwise make gigabytes to check.
import os, sys, time
d = sys.argv[1]
while not os.path.exists(d + "/go"):
    time.sleep(0.005)
i, longest = 0, 0.0
while not os.path.exists(d + "/stop") and i < 10_000_000:
    for _ in range(50):
        chunk = "".join("%09d\n" % n for n in range(i, i + 100)).encode()
        t = time.monotonic()
        os.write(1, chunk)
        longest = max(longest, time.monotonic() - t)
        i += 100
while not os.path.exists(d + "/stop"):
    time.sleep(0.005)
with open(d + "/finished.tmp", "w") as f:
    f.write("%d %.6f\n" % (i - 1, longest))
os.rename(d + "/finished.tmp", d + "/finished")
while True:
    time.sleep(60)
