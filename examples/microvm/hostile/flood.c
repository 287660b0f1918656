/* flood: writes 64 MiB to stdout in 64 KiB pieces, then exits 0. */
#include <string.h>
#include <unistd.h>

int main(void) {
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 1024; i++) {
        if (write(1, buf, sizeof buf) != (ssize_t)sizeof buf) return 1;
    }
    return 0;
}
