"""A child process's own peak memory, for the tests that bound it.

Read as VmHWM from /proc/self/status, the high-water mark of the process's current memory. Not
`getrusage(...).ru_maxrss` nor `wait4`'s: Linux carries into them the high-water mark of the memory a process had
before its exec, so a child started from a test session that has grown to 2 GB reads as 2 GB however little it uses
(and a growth measured from them reads as 0)."""

PEAK_RSS_SOURCE = r'''
def peak_rss_bytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
'''
