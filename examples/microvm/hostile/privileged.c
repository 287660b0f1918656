/* privileged: executes the privileged instruction named by argv[1]. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "hlt";
    if (!strcmp(what, "hlt")) __asm__ volatile("hlt");
    else if (!strcmp(what, "cli")) __asm__ volatile("cli");
    else if (!strcmp(what, "out")) __asm__ volatile("outb %%al, $0x80" ::"a"(0));
    else if (!strcmp(what, "in")) { unsigned char v; __asm__ volatile("inb $0x60, %0" : "=a"(v)); }
    else if (!strcmp(what, "wrmsr")) __asm__ volatile("wrmsr" ::"c"(0xc0000082), "a"(0), "d"(0));
    else if (!strcmp(what, "rdmsr")) { unsigned a, d; __asm__ volatile("rdmsr" : "=a"(a), "=d"(d) : "c"(0xc0000082)); }
    else if (!strcmp(what, "cr3")) __asm__ volatile("mov %0, %%cr3" ::"r"(0UL));
    else if (!strcmp(what, "lgdt")) { static char d[10]; __asm__ volatile("lgdt %0" ::"m"(d)); }
    else if (!strcmp(what, "int80")) __asm__ volatile("int $0x80");
    printf("%s did not fault\n", what);
    return 0;
}
