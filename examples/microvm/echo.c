/* echo: copies stdin to stdout, then prints its arguments, one a line. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[4096];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        if (write(1, buf, (size_t)n) != n) return 1;
    }
    for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    return 0;
}
