/* parser-svc: raw device payloads on telemetry.raw → canonical records on telemetry.parsed.
 *
 * Reads as: parse the configuration, connect, then for each message decode the payload whole
 * and emit its records keyed by device id, or send it to the DLQ with the reason; on SIGTERM
 * drain and exit. `parser-svc decode` decodes one payload from stdin for a person. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser-svc/decode.h"
#include "parser-svc/inspect.h"
#include "common/fp_buf.h"
#include "common/fp_config.h"
#include "common/fp_http.h"
#include "common/fp_kafka_output.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_signal.h"
#include "common/fp_stage.h"
#include "common/fp_time.h"

typedef struct parser_config {
    fp_common_config common;
} parser_config;

static const fp_option parser_options[] = {
    FP_COMMON_OPTIONS("fleetpipe-parser", "telemetry.raw", "telemetry.parsed", "9101", "8388608"),
    FP_OPT_TABLE_END,
};

typedef struct parser {
    fp_record_batch batch;
    fp_buf out;
    fp_counter *m_records;
} parser;

/* The message's content-type header, if any. */
static const char *content_type_of(const rd_kafka_message_t *msg, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "content-type", &value, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return value;
}

/* One raw message: decode whole, emit each record keyed by its device id, or reject. A
 * payload of independent items (a fleet snapshot page) of which some failed emits the records
 * of the others and goes once to the DLQ, listing the failed items. */
static int handle_raw(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
{
    parser *p = ctx;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    decode_input in = {msg->payload, msg->len, msg->key, msg->key_len, ts >= 0 ? ts : fp_now_ms()};
    decode_error err = {0};
    size_t ct_len = 0;
    const char *ct = content_type_of(msg, &ct_len);

    if (decode_payload(NULL, ct, ct_len, &in, &p->batch, &err) < 0)
        return fp_stage_reject(st, err.code, err.message);
    for (size_t i = 0; i < p->batch.len; i++) {
        const fp_record *r = &p->batch.recs[i];

        fp_buf_clear(&p->out);
        if (fp_record_encode_json(r, &p->out) < 0) {
            fp_error("out of memory encoding a record");
            return -1;
        }
        if (fp_kafka_output_emit(st, r->device_id, strlen(r->device_id), p->out.data, p->out.len) <
            0)
            return -1;
    }
    fp_counter_add(p->m_records, p->batch.len);
    if (p->batch.failed_len > 0) {
        char why[1024];

        decode_partial_message(&p->batch, why, sizeof(why));
        return fp_stage_reject(st, p->batch.failed_code, why);
    }
    return 0;
}

int main(int argc, char **argv)
{
    parser_config cfg;
    parser p = {0};
    fp_kafka_output *ko;
    fp_stage *st;
    fp_http *http;
    bool http_off;
    char err[512];
    int rc;

    if (argc > 1 && strcmp(argv[1], "decode") == 0)
        return inspect_command(argc, argv);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fp_config_print_help("parser-svc",
                             "Decodes raw device payloads (canonical JSON) from IN_TOPIC into "
                             "canonical records on OUT_TOPIC; bad input goes to DLQ_TOPIC.",
                             parser_options, inspect_usage);
        return 0;
    }
    memset(&cfg, 0, sizeof(cfg));
    fp_config_startup(argc, argv, "parser-svc", "", parser_options, &cfg);
    fp_signal_install();
    fp_metrics_register_process("parser-svc", FP_VERSION);
    p.m_records = fp_metrics_counter("fleetpipe_parser_records_total",
                                     "Canonical records decoded from raw payloads.", NULL);

    ko = fp_kafka_output_new(&cfg.common);
    st = ko != NULL ? fp_stage_new("parser", &cfg.common, fp_kafka_output_ops(ko), err, sizeof(err))
                    : NULL;
    if (st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", ko != NULL ? err : "out of memory",
                  FP_KV_END);
        fp_kafka_output_free(ko);
        return 2;
    }
    http = fp_http_start(cfg.common.http_bind, (int)cfg.common.http_port, &http_off);
    rc = http != NULL || http_off ? fp_stage_run(st, handle_raw, NULL, &p) : 1;
    fp_stage_free(st);
    fp_kafka_output_free(ko);
    fp_http_stop(http);
    decode_batch_free(&p.batch);
    fp_buf_free(&p.out);
    return rc;
}
