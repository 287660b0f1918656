/* wildwrite: passes wild pointers to write() and read(); each must fail
 * with EFAULT without the host touching anything. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    static const unsigned long wild[] = {
        0x0, 0x10, 0x1000, 0x4000, 0x10000, 0x3ff000, /* null page, system area, page tables */
        0x7fffffffe000UL, 0xffffffff81000000UL, 0xffffffffffffff00UL, /* host-looking, kernel, wrapping */
    };
    int efault = 0;
    for (unsigned i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        if (write(1, (const void *)wild[i], 64) == -1 && errno == EFAULT) efault++;
        if (read(0, (void *)wild[i], 64) == -1 && errno == EFAULT) efault++;
    }
    /* A valid buffer with a length that runs past the end of memory. */
    char ok[16] = "fine";
    volatile size_t huge = 1UL << 40;
    if (write(1, ok, huge) == -1 && errno == EFAULT) efault++;
    printf("%d of %d calls failed with EFAULT\n", efault, 2 * (int)(sizeof wild / sizeof wild[0]) + 1);
    return 0;
}
