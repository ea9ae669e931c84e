# A "server" for the full-disk logs test (args: DIR FIRST): writes numbered lines ("%09d\n")
# from FIRST on to stdout (llmctl's O_APPEND log fd) until the filesystem is full (ENOSPC), then
# creates DIR/full (DIR is on another filesystem), waits for DIR/more (removing both), and goes on
# with the rest of the line it was writing: every line is written once, in order. When DIR/stop
# holds a number N at that point, it writes N more lines instead of filling the disk again, then
# writes its last line number to DIR/finished and idles.
import errno, os, sys, time
d = sys.argv[1]
i = int(sys.argv[2])
pending = b""
def wait_for_more():
    open(d + "/full.tmp", "w").close()
    os.rename(d + "/full.tmp", d + "/full")
    while not os.path.exists(d + "/more"):
        time.sleep(0.005)
    os.unlink(d + "/full")
    os.unlink(d + "/more")
limit = None
while True:
    if not pending:
        if limit is not None and i >= limit:
            break
        pending = "".join("%09d\n" % n for n in range(i, i + 100)).encode()
        i += 100
    try:
        pending = pending[os.write(1, pending):]
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        wait_for_more()
        if os.path.exists(d + "/stop") and limit is None:
            limit = i + int(open(d + "/stop").read())
with open(d + "/finished.tmp", "w") as f:
    f.write("%d\n" % (i - 1))
os.rename(d + "/finished.tmp", d + "/finished")
while True:
    time.sleep(60)
