/* forkbomb: forks forever; in a microVM fork is refused (ENOSYS). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 1000; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork refused: %s\n", strerror(errno));
            return 3;
        }
        if (pid == 0) continue; /* a child would fork on */
    }
    printf("forked 1000 times\n");
    return 0;
}
