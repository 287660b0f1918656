/* pagetables: writes where the VM's page tables (0x10000) and descriptor
 * tables (0x4000) are. They are kernel-only pages: the write faults. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    volatile unsigned long *target = (volatile unsigned long *)(argc > 1 && !strcmp(argv[1], "gdt") ? 0x4000UL : 0x10000UL);
    *target = 0xffffffffffffffffUL; /* would map everything, writable, everywhere */
    printf("wrote the page tables\n");
    return 0;
}
