/* examples/wasi/files.c — a WASI command that uses only the directories it
 * was granted.
 *
 *   files.wasm cat PATH          print the file at PATH
 *   files.wasm write PATH TEXT   create or replace PATH with TEXT
 *   files.wasm hoard PATH        open PATH again and again without closing
 *                                it (hostile: the sandbox caps open files)
 *
 * Errors go to stderr with exit status 1: with no grant, or a read-only one
 * for `write`, or a path that escapes the granted directory, the sandbox
 * refuses and this program reports why.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int cat(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    fputs(text, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int hoard(const char *path) {
    int n = 0;
    while (fopen(path, "rb")) n++;
    printf("opened %d times\n", n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "hoard") == 0) return hoard(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cat") == 0) return cat(argv[2]);
    if (argc == 4 && strcmp(argv[1], "write") == 0) return write_file(argv[2], argv[3]);
    fprintf(stderr, "usage: files cat PATH | files write PATH TEXT | files hoard PATH\n");
    return 2;
}
