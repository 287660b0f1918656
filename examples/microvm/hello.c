/* hello: the smallest microVM program. Built static with musl-gcc and gcc. */
#include <stdio.h>

int main(void) {
    printf("hello from a microVM\n");
    return 0;
}
