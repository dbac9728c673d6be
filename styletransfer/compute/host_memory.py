"""glibc's malloc tuned for this program's runs: fewer arenas for its threads, and what a run freed returned
to the system before the next. Everything here does nothing where the C library is not glibc."""
import ctypes
import gc

# One arena for all threads: memory freed by one is reused by the others. glibc's default, 8 per core, left what
# L-BFGS's worker thread freed in an arena of its own, and with 2 one L-BFGS run in 10 to 20 still peaked about
# 0.5 GB higher; with 1, none in 36, the same speed and pixels (docs/development.md, Measurement history).
MALLOC_ARENAS = 1


# For a process that runs one run after another (reproduce.py's cells): blocks from this size up are mapped on
# their own, returned to the system when freed, and the heap is trimmed after each run, so that such a process
# peaks about as one run does, not higher with each run (docs/reproducing.md, What a figure costs).
RUNS_MMAP_THRESHOLD = 64 * 1024


def _glibc():
    """glibc, or None where the C library is another."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        return libc if hasattr(libc, 'mallopt') and hasattr(libc, 'malloc_trim') else None
    except OSError:
        return None


def limit_malloc_arenas(count=MALLOC_ARENAS):
    """Caps glibc's malloc arenas (M_ARENA_MAX) for threads started from now on: memory freed in one thread's
    arena is then reused by the others. Nothing happens where the C library is not glibc."""
    libc = _glibc()
    if libc:
        libc.mallopt(-8, count)  # M_ARENA_MAX, from glibc's malloc.h


def return_freed_memory_between_runs():
    """For a process that runs several runs in turn: limit_malloc_arenas, and glibc maps blocks of
    RUNS_MMAP_THRESHOLD bytes and more on their own (M_MMAP_THRESHOLD) and trims the heap's top at once
    (M_TRIM_THRESHOLD 0), so that what a run freed goes back to the system rather than piling up; with
    release_freed_memory after each run."""
    limit_malloc_arenas()
    libc = _glibc()
    if libc:
        libc.mallopt(-3, RUNS_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 0)  # M_TRIM_THRESHOLD


def release_freed_memory():
    """After a run: Python's cycles collected, and glibc's free memory returned to the system (malloc_trim)."""
    gc.collect()
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
