// POSIX calls Swift cannot reach directly (prctl is variadic).
#include <sys/prctl.h>
#include <sys/file.h>
#include <signal.h>
#include <unistd.h>

// A sweep's child run dies with the sweep: SIGKILL when the parent exits, and an immediate exit when the
// parent `expected_parent` is already gone (the race between fork and prctl).
static inline int sqakd_die_with_parent(int expected_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    if (getppid() != expected_parent) _exit(137);
    return 0;
}
