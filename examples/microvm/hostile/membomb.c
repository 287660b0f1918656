/* membomb: allocates and touches memory until something stops it. */
#include <stdlib.h>
#include <string.h>

int main(void) {
    for (;;) {
        char *p = malloc(1 << 20);
        if (p == NULL) return 2; /* never reached in a microVM: the run ends first */
        memset(p, 0xab, 1 << 20);
    }
}
