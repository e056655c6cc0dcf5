#include "fp_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_buf.h"
#include "fp_log.h"
#include "fp_metrics.h"
#include "fp_time.h"

struct fp_http {
    struct MHD_Daemon *daemon;
};

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
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

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
    h->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_request,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
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
