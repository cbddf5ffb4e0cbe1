/* hal_posix.c -- POSIX port: the "virtual board". Opens a pseudo-terminal, prints the slave
 * path ("NP_VIRTUAL_BOARD /dev/pts/N") on stdout and serves the protocol on the master side.
 *
 *   np_virtual_board [--baud B] [--arena BYTES] [--staging BYTES] [--watch-stdin]
 *
 * --baud B      emulate a UART at B baud, 8N1 (10 bits per byte), full duplex: a received
 *               frame is handled no earlier than its last byte would have arrived, and
 *               each reply is released when its last byte would have been sent. A pty
 *               itself has no line rate. 0 (default) = as fast as the pty goes.
 * --watch-stdin exit when stdin reaches EOF (the parent process went away).
 * SIGTERM/SIGINT end it too, also while a reply is waiting for the host to read.
 */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "np_board.h"
#include "np_hal.h"

#ifndef NP_ARENA_MAX
#define NP_ARENA_MAX (1024u * 1024u)
#endif
#ifndef NP_STAGING_MAX
#define NP_STAGING_MAX (256u * 1024u)
#endif

static uint8_t g_arena[NP_ARENA_MAX];
static uint8_t g_staging[NP_STAGING_MAX];
static np_board_t g_board;
static int g_fd = -1;
static double g_byte_time = 0.0; /* seconds per byte at the emulated baud, 0 = off */
static double g_tx_free = 0.0, g_rx_free = 0.0, g_t0 = 0.0;
static volatile sig_atomic_t g_stop = 0;
static int g_watch_stdin = 0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t)
{
    double d = t - now_s();
    struct timespec ts;
    if (d <= 0) return;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_stop) {
    }
}

void np_hal_write(const uint8_t *data, size_t len)
{
    size_t off = 0;
    if (g_byte_time > 0) {
        double start = now_s() > g_tx_free ? now_s() : g_tx_free;
        g_tx_free = start + (double)len * g_byte_time;
        sleep_until(g_tx_free);
    }
    /* g_fd is non-blocking: a host that stops reading fills the pty, and then we wait in
     * poll() -- where SIGTERM (g_stop) and EOF on stdin (--watch-stdin) still end us --
     * instead of blocking in write() forever */
    while (off < len && !g_stop) {
        ssize_t w = write(g_fd, data + off, len - off);
        if (w >= 0) {
            off += (size_t)w;
            continue;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p[2];
            nfds_t n = 1;
            p[0].fd = g_fd;
            p[0].events = POLLOUT;
            p[0].revents = 0;
            if (g_watch_stdin) {
                p[1].fd = 0;
                p[1].events = POLLIN;
                p[1].revents = 0;
                n = 2;
            }
            if (poll(p, n, 100) > 0 && g_watch_stdin && (p[1].revents & (POLLIN | POLLHUP))) {
                uint8_t sink[256];
                if (read(0, sink, sizeof sink) <= 0) g_stop = 1; /* parent gone */
            }
            continue;
        }
        return; /* host gone: the reply is lost, as on a real wire */
    }
}

uint32_t np_hal_millis(void) { return (uint32_t)((now_s() - g_t0) * 1000.0); }

const char *np_hal_board_name(void) { return "posix-virtual"; }

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static long arg_long(const char *s, const char *name)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < 0) {
        fprintf(stderr, "np_virtual_board: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long baud = 0, arena = NP_ARENA_MAX / 4, staging = NP_STAGING_MAX / 4;
    int watch_stdin = 0, i, slave;
    const char *path;
    struct termios tio;
    struct sigaction sa;
    uint8_t buf[4096];

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--baud") && i + 1 < argc) baud = arg_long(argv[++i], "--baud");
        else if (!strcmp(argv[i], "--arena") && i + 1 < argc) arena = arg_long(argv[++i], "--arena");
        else if (!strcmp(argv[i], "--staging") && i + 1 < argc)
            staging = arg_long(argv[++i], "--staging");
        else if (!strcmp(argv[i], "--watch-stdin")) watch_stdin = g_watch_stdin = 1;
        else {
            fprintf(stderr, "usage: %s [--baud B] [--arena BYTES] [--staging BYTES] [--watch-stdin]\n",
                    argv[0]);
            return 2;
        }
    }
    if (arena > (long)NP_ARENA_MAX || staging > (long)NP_STAGING_MAX) {
        fprintf(stderr, "np_virtual_board: arena <= %u, staging <= %u\n", NP_ARENA_MAX,
                NP_STAGING_MAX);
        return 2;
    }
    if (baud > 0) g_byte_time = 10.0 / (double)baud;
    g_t0 = now_s();

    g_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (g_fd < 0 || grantpt(g_fd) != 0 || unlockpt(g_fd) != 0 || !(path = ptsname(g_fd))) {
        perror("np_virtual_board: pty");
        return 1;
    }
    /* keep one slave fd open: the master never sees EIO while the host reconnects, and
     * the line is raw from the start (no echo, no CR/LF translation) */
    slave = open(path, O_RDWR | O_NOCTTY);
    if (slave < 0 || tcgetattr(slave, &tio) != 0) {
        perror("np_virtual_board: slave");
        return 1;
    }
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    if (fcntl(g_fd, F_SETFL, fcntl(g_fd, F_GETFL) | O_NONBLOCK) != 0) {
        perror("np_virtual_board: O_NONBLOCK");
        return 1;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    np_board_init(&g_board, g_arena, (size_t)arena, g_staging, (size_t)staging);
    printf("NP_VIRTUAL_BOARD %s\n", path);
    fflush(stdout);

    while (!g_stop) {
        struct pollfd p[2];
        int n = 1, r;
        p[0].fd = g_fd;
        p[0].events = POLLIN;
        p[0].revents = 0;
        if (watch_stdin) {
            p[1].fd = 0;
            p[1].events = POLLIN;
            p[1].revents = 0;
            n = 2;
        }
        r = poll(p, (nfds_t)n, 500);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (watch_stdin && (p[1].revents & (POLLIN | POLLHUP))) {
            ssize_t k = read(0, buf, sizeof buf);
            if (k <= 0) break;
        }
        if (p[0].revents & POLLIN) {
            ssize_t k = read(g_fd, buf, sizeof buf);
            if (k > 0) {
                if (g_byte_time > 0) {
                    double t = now_s();
                    g_rx_free = (t > g_rx_free ? t : g_rx_free) + (double)k * g_byte_time;
                    sleep_until(g_rx_free);
                }
                np_board_rx(&g_board, buf, (size_t)k);
            } else if (k < 0 && errno != EAGAIN && errno != EINTR && errno != EIO) {
                break;
            }
        }
    }
    close(slave);
    close(g_fd);
    return 0;
}
