/* loop: spins in user mode forever; only the deadline stops it. */
int main(void) {
    volatile unsigned long n = 0;
    for (;;) n++;
}
