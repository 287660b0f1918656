/* wagi: a WAGI app. The request comes as CGI variables and stdin; the
 * response goes to stdout as CGI headers, a blank line and a body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *var(const char *name) {
    const char *v = getenv(name);
    return v ? v : "";
}

int main(void) {
    long length = atol(var("CONTENT_LENGTH"));
    char body[1024] = {0};
    size_t got = fread(body, 1, length > 0 && length < (long)sizeof body ? (size_t)length : 0, stdin);
    printf("content-type: text/plain\n");
    printf("x-tier: microvm\n\n");
    printf("hello from a microVM app\n");
    printf("method=%s path=%s query=%s\n", var("REQUEST_METHOD"), var("PATH_INFO"), var("QUERY_STRING"));
    if (got > 0) printf("body=%.*s\n", (int)got, body);
    return 0;
}
