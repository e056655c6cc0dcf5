/* Tests of common/fp_http.c over real sockets on loopback: the probes stay answerable while
 * many clients hold connections open with requests that never finish. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fp_http.h"
#include "fp_test.h"
#include "common/fp_time.h"

/* A loopback port on which nothing listens now (bound, then closed). Returns 0 when none. */
static int free_port(void)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A connected socket to 127.0.0.1:port, or -1. */
static int connect_to(int port)
{
    struct sockaddr_in sin = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* GET /healthz on a new connection; returns the status code, or -1 when no answer came within
 * deadline_ms (refused, reset or silent). */
static int probe(int port, int64_t deadline_ms)
{
    static const char req[] =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int64_t end = fp_mono_ms() + deadline_ms;
    char buf[256];
    size_t got = 0;
    int fd = connect_to(port), status = -1;

    if (fd < 0)
        return -1;
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    while (got < sizeof(buf) - 1 && fp_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, (int)(end - fp_mono_ms())) <= 0)
            break;
        n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n") != NULL)
            break;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    close(fd);
    return status;
}

#define SLOW_CLIENTS 80

/* 80 connections from the probe's own address send an unfinished request and keep it alive with
 * a byte every 2 s (a slowloris, or a broken client); /healthz must still answer within 1 s,
 * again and again, for 8 s (beyond the idle timeout the trickle defeats). */
FP_TEST(http_probes_answer_while_slow_clients_hold_connections)
{
    int fds[SLOW_CLIENTS];
    int port = free_port(), opened = 0, answered = 0, probes = 0;
    bool disabled = false;
    fp_http *h;
    int64_t end, next_byte;

    FP_CHECK(port > 0);
    h = fp_http_start("127.0.0.1", port, &disabled);
    FP_CHECK(h != NULL);
    if (h == NULL)
        return;
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        fds[i] = connect_to(port);
        if (fds[i] >= 0 && send(fds[i], "GET /metrics HTTP/1.1\r\nX-Slow: ", 31, MSG_NOSIGNAL) > 0)
            opened++;
    }
    FP_CHECK(opened >= 64);
    end = fp_mono_ms() + 8000;
    next_byte = fp_mono_ms() + 2000;
    while (fp_mono_ms() < end) {
        int status = probe(port, 1000);

        probes++;
        if (status == 200)
            answered++;
        else
            fp_test_fail(__FILE__, __LINE__, "probe %d at %lld ms: status %d", probes,
                         (long long)(fp_mono_ms() - (end - 8000)), status);
        if (fp_mono_ms() >= next_byte) {
            /* The trickle: one more byte of the header on every connection still open. */
            for (int i = 0; i < SLOW_CLIENTS; i++)
                if (fds[i] >= 0)
                    (void)send(fds[i], "x", 1, MSG_NOSIGNAL);
            next_byte += 2000;
        }
        /* Probes are 100 ms apart, like a busy kubelet; a timed wait, not a synchronisation. */
        poll(NULL, 0, 100);
    }
    FP_CHECK(probes >= 8);
    FP_CHECK_INT(answered, probes);
    for (int i = 0; i < SLOW_CLIENTS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    fp_http_stop(h);
}
