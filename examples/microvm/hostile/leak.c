/* leak: prints what it finds in its memory from an earlier request (a
 * static buffer, the heap and the stack), then leaves its own secret
 * there (argv[1]). A cold start must find nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char kept[64];

int main(int argc, char **argv) {
    char *heap = malloc(64);
    char stack[64];
    printf("static=[%s] heap=[%.16s] stack=[%.16s]\n", kept, heap, stack);
    const char *secret = argc > 1 ? argv[1] : "secret";
    strncpy(kept, secret, sizeof kept - 1);
    strncpy(heap, secret, 63);
    strncpy(stack, secret, 63);
    __asm__ volatile("" ::"r"(stack) : "memory");
    return 0;
}
