/*
 * wagi/hello.c — WAGI app (WASI preview1 command, built by
 * scripts/build-examples.sh into examples/build/wagi-hello.wasm).
 *
 * The sandbox should run it as a WAGI handler: the request arrives in CGI
 * environment variables (REQUEST_METHOD, PATH_INFO, QUERY_STRING, ...) with
 * the body on stdin; the response goes to stdout as CGI headers, a blank line,
 * then the body. Output:
 *
 *   [status: 418]                 (only if QUERY_STRING contains "status=418")
 *   content-type: text/plain
 *
 *   Hello from C!
 *   method=<REQUEST_METHOD> path=<PATH_INFO> query=<QUERY_STRING>
 *   body=<stdin copied verbatim>
 *
 * Missing variables are printed as empty strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or_empty(const char *name) {
    const char *v = getenv(name);
    return v ? v : "";
}

int main(void) {
    const char *method = env_or_empty("REQUEST_METHOD");
    const char *path = env_or_empty("PATH_INFO");
    const char *query = env_or_empty("QUERY_STRING");

    if (strstr(query, "status=418") != NULL) {
        fputs("status: 418\n", stdout);
    }
    fputs("content-type: text/plain\n\n", stdout);
    fputs("Hello from C!\n", stdout);
    printf("method=%s path=%s query=%s\n", method, path, query);
    fputs("body=", stdout);

    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) {
            return 1;
        }
    }
    fputs("\n", stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
