/* fp_http: the HTTP endpoints every service exposes, on libmicrohttpd's own thread.
 *
 *   GET /metrics  Prometheus text format 0.0.4 (fp_metrics_render)
 *   GET /healthz  200 while the main loop is alive (it called fp_health_beat recently)
 *   GET /readyz   200 only while the service says it is ready (fp_health_set_ready), else 503
 *                 with the reason in the body
 *
 * The health state is read by the HTTP thread and written by the main loop through atomics. */
#ifndef FP_HTTP_H
#define FP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fp_http fp_http;

/* Records that the main loop is alive. Call at least once per loop iteration. */
void fp_health_beat(void);

/* Sets readiness; `reason` must be a string with static storage duration (it is shown by
 * /readyz while not ready). */
void fp_health_set_ready(bool ready, const char *reason);
bool fp_health_ready(void);

/* /healthz fails when the loop has not beaten for this long (default 30 s). */
void fp_health_set_stall_ms(int64_t ms);

struct MHD_Connection;

/* Queues a response on a libmicrohttpd connection with a copy of body, Content-Type and
 * Cache-Control: no-store. Returns libmicrohttpd's verdict (MHD_YES/MHD_NO as an int). */
int fp_http_respond(struct MHD_Connection *conn, unsigned int status, const char *content_type,
                    const char *body, size_t len);

/* Starts the server on bind_addr:port. Returns NULL with a logged error when the port cannot
 * be bound. port 0 means disabled: returns NULL without error and *disabled is set. */
fp_http *fp_http_start(const char *bind_addr, int port, bool *disabled);

/* Stops the server and frees it; accepts NULL. */
void fp_http_stop(fp_http *h);

#endif
