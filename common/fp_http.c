#include "common/fp_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/fp_buf.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_time.h"

/* Keeping the probes answerable. libmicrohttpd's timeout is an idle timeout, so a client that
 * sends one byte of an unfinished request every few seconds holds its connection forever, and a
 * few dozen of them filled the old limit of 64 connections: /healthz refused connections and the
 * kubelet would have restarted a healthy pod. Now:
 * - a connection may wait at most HEADER_TIMEOUT_MS for the headers of its next request (from
 *   its start, or from the end of its previous request), however it trickles;
 * - one client address holds at most PER_CLIENT_MAX connections and all of them at most
 *   CONN_MAX: when a new connection would pass either bound, the connection of that address (or
 *   of any, for the total) that has waited longest for its headers is closed to make room, so a
 *   probe, which sends its request at once, always gets in, even from the same address as the
 *   slow clients;
 * - libmicrohttpd itself limits an address to twice PER_CLIENT_MAX and the total to twice
 *   CONN_MAX (room for connections being closed), and times out a silent one after
 *   IDLE_TIMEOUT_S.
 * Connections are closed with shutdown(2) on their socket: libmicrohttpd then sees the end of
 * the stream and releases the connection itself. Every callback below runs on libmicrohttpd's
 * one internal thread, so the table needs no lock. */
#define CONN_MAX          256
#define PER_CLIENT_MAX    32
#define HEADER_TIMEOUT_MS 5000
#define IDLE_TIMEOUT_S    10

typedef struct http_conn {
    bool used;
    bool closing;             /* shut down by us, not yet released by libmicrohttpd */
    int fd;                   /* the connection's socket */
    struct sockaddr_in6 addr; /* the client's address (IPv4 or IPv6), zero-padded */
    int64_t waiting_since_ms; /* waiting for a request's headers since; 0 while answering one */
} http_conn;

struct fp_http {
    struct MHD_Daemon *daemon;
    http_conn conns[2 * CONN_MAX];
};

/* True when two client addresses are the same host (ports aside). */
static bool same_client(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b)
{
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)a;
    const struct sockaddr_in *b4 = (const struct sockaddr_in *)(const void *)b;

    if (a->sin6_family != b->sin6_family)
        return false;
    if (a->sin6_family == AF_INET)
        return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
    return memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

static void copy_addr(struct sockaddr_in6 *out, const struct sockaddr *addr)
{
    memset(out, 0, sizeof(*out));
    if (addr == NULL)
        return;
    if (addr->sa_family == AF_INET)
        memcpy(out, addr, sizeof(struct sockaddr_in));
    else if (addr->sa_family == AF_INET6)
        memcpy(out, addr, sizeof(struct sockaddr_in6));
}

static void close_conn(http_conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    c->closing = true;
}

/* Closes, among the live connections (of `client` only, when not NULL), the one that has
 * waited longest for its headers. Returns false when none is waiting. */
static bool close_longest_waiting(fp_http *h, const struct sockaddr_in6 *client)
{
    http_conn *oldest = NULL;

    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
        http_conn *c = &h->conns[i];

        if (!c->used || c->closing || c->waiting_since_ms == 0 ||
            (client != NULL && !same_client(&c->addr, client)))
            continue;
        if (oldest == NULL || c->waiting_since_ms < oldest->waiting_since_ms)
            oldest = c;
    }
    if (oldest == NULL)
        return false;
    close_conn(oldest);
    return true;
}

/* libmicrohttpd's accept policy: enforces the header deadline, then makes room for the new
 * connection within the bounds above, or refuses it when every connection is busy answering. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    fp_http *h = cls;
    struct sockaddr_in6 client;
    int64_t now = fp_mono_ms();
    size_t live = 0, of_client = 0;

    (void)addrlen;
    copy_addr(&client, addr);
    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
        http_conn *c = &h->conns[i];

        if (!c->used || c->closing)
            continue;
        if (c->waiting_since_ms != 0 && now - c->waiting_since_ms > HEADER_TIMEOUT_MS) {
            close_conn(c);
            continue;
        }
        live++;
        if (same_client(&c->addr, &client))
            of_client++;
    }
    for (; of_client >= PER_CLIENT_MAX; of_client--, live--)
        if (!close_longest_waiting(h, &client))
            return MHD_NO;
    for (; live >= CONN_MAX; live--)
        if (!close_longest_waiting(h, NULL))
            return MHD_NO;
    return MHD_YES;
}

/* Tracks each connection from its start to its release. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    fp_http *h = cls;
    http_conn *c = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (c != NULL)
            c->used = false;
        *socket_context = NULL;
        return;
    }
    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
        const union MHD_ConnectionInfo *fd, *addr;

        c = &h->conns[i];
        if (c->used)
            continue;
        fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (fd == NULL)
            break;
        c->used = true;
        c->closing = false;
        c->fd = fd->connect_fd;
        copy_addr(&c->addr, addr != NULL ? addr->client_addr : NULL);
        c->waiting_since_ms = fp_mono_ms();
        *socket_context = c;
        return;
    }
    /* Not tracked (cannot happen: the table has room for libmicrohttpd's own limit). */
    *socket_context = NULL;
}

/* The connection's slot, or NULL when it is not tracked. */
static http_conn *conn_slot(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* libmicrohttpd's own messages ("closing connection: ...", one per refused or closed client
 * under a flood) as JSON debug lines instead of raw text on stderr. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    if (!fp_log_enabled(FP_LOG_DEBUG) || vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        return;
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    fp_log_kv(FP_LOG_DEBUG, msg, "source", "libmicrohttpd", FP_KV_END);
}

/* A request ended: its connection waits for the next request's headers from now on. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_conn *c = conn_slot(conn);

    (void)cls, (void)req_cls, (void)toe;
    if (c != NULL)
        c->waiting_since_ms = fp_mono_ms();
}

static _Atomic int64_t last_beat_ms;
static _Atomic int64_t stall_ms = 30000;
static atomic_bool ready;
static _Atomic(const char *) not_ready_reason = "starting";

void fp_health_beat(void)
{
    atomic_store_explicit(&last_beat_ms, fp_mono_ms(), memory_order_relaxed);
}

void fp_health_set_ready(bool is_ready, const char *reason)
{
    bool was = atomic_exchange(&ready, is_ready);

    if (!is_ready)
        atomic_store(&not_ready_reason, reason != NULL ? reason : "not ready");
    if (was != is_ready) {
        if (is_ready)
            fp_info("ready");
        else
            fp_warn("not ready: %s", reason != NULL ? reason : "not ready");
    }
}

bool fp_health_ready(void)
{
    return atomic_load(&ready);
}

void fp_health_set_stall_ms(int64_t ms)
{
    atomic_store(&stall_ms, ms);
}

int fp_http_respond(struct MHD_Connection *conn, unsigned int status, const char *content_type,
                    const char *body, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;

    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status,
                               const char *content_type, const char *body, size_t len)
{
    return (enum MHD_Result)fp_http_respond(conn, status, content_type, body, len);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *conn)
{
    fp_buf b = {0};
    enum MHD_Result rc;

    if (fp_metrics_render(&b) < 0) {
        fp_buf_free(&b);
        return respond(conn, 500, "text/plain", "out of memory\n", 14);
    }
    rc = respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", fp_buf_cstr(&b), b.len);
    fp_buf_free(&b);
    return rc;
}

static enum MHD_Result handle_healthz(struct MHD_Connection *conn)
{
    int64_t age = fp_mono_ms() - atomic_load(&last_beat_ms);
    char body[128];
    int n;

    if (age <= atomic_load(&stall_ms))
        return respond(conn, 200, "text/plain", "ok\n", 3);
    n = snprintf(body, sizeof(body), "main loop stalled for %lld ms\n", (long long)age);
    return respond(conn, 503, "text/plain", body, (size_t)n);
}

static enum MHD_Result handle_readyz(struct MHD_Connection *conn)
{
    char body[256];
    int n;

    if (atomic_load(&ready))
        return respond(conn, 200, "text/plain", "ready\n", 6);
    n = snprintf(body, sizeof(body), "not ready: %s\n", atomic_load(&not_ready_reason));
    return respond(conn, 503, "text/plain", body, (size_t)n);
}

/* libmicrohttpd's request callback: routes the three endpoints, 404 otherwise. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    http_conn *c = conn_slot(conn);

    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    /* The headers are complete: the connection is answering, no longer waiting. */
    if (c != NULL)
        c->waiting_since_ms = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(conn, 405, "text/plain", "method not allowed\n", 19);
    if (strcmp(url, "/metrics") == 0)
        return handle_metrics(conn);
    if (strcmp(url, "/healthz") == 0)
        return handle_healthz(conn);
    if (strcmp(url, "/readyz") == 0)
        return handle_readyz(conn);
    return respond(conn, 404, "text/plain", "not found\n", 10);
}

fp_http *fp_http_start(const char *bind_addr, int port, bool *disabled)
{
    struct sockaddr_in sin;
    fp_http *h;

    *disabled = port == 0;
    if (port == 0)
        return NULL;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1) {
        fp_error("HTTP_BIND \"%s\" is not an IPv4 address", bind_addr);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    fp_health_beat();
    /* One internal thread (the callbacks share the connection table without a lock), with
     * epoll or poll rather than select, which could not watch a socket numbered 1024 or more. */
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, on_accept, h, on_request,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(2 * CONN_MAX),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)(2 * PER_CLIENT_MAX),
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (h->daemon == NULL) {
        fp_error("cannot serve HTTP on %s:%d", bind_addr, port);
        free(h);
        return NULL;
    }
    fp_info("HTTP endpoints on %s:%d", bind_addr, port);
    return h;
}

void fp_http_stop(fp_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
