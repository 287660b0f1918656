/*
 * wagi/env.c — WAGI app (WASI preview1 command, built by
 * scripts/build-examples.sh into examples/build/wagi-env.wasm) that answers
 * every request with its whole environment, one `NAME=value` per line:
 * what a guest learns of a request. The security tests deploy it to show
 * that no DWCP credential reaches a guest (crates/dwcp/tests/guests.rs).
 */
#include <stdio.h>

extern char **environ;

int main(void) {
    fputs("content-type: text/plain\n\n", stdout);
    for (char **e = environ; *e != NULL; e++) {
        printf("%s\n", *e);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
