/* enricher-svc: canonical records on telemetry.parsed → records with "enrichment" on
 * telemetry.enriched.
 *
 * Reads as: parse the configuration, connect, then for each record add what the configured
 * lookups know about it and emit it keyed by device id; a record that is not a canonical record
 * goes to the DLQ. With no lookup configured every record is forwarded with status
 * "unavailable" (lookups are optional; a failed lookup never drops a record). */
#include <stdio.h>
#include <string.h>

#include "fp_buf.h"
#include "fp_config.h"
#include "fp_http.h"
#include "fp_log.h"
#include "fp_metrics.h"
#include "fp_record.h"
#include "fp_signal.h"
#include "fp_stage.h"

typedef struct enricher_config {
    fp_common_config common;
} enricher_config;

static const fp_option enricher_options[] = {
    FP_COMMON_OPTIONS("fleetpipe-enricher", "telemetry.parsed", "telemetry.enriched", "9102"),
    FP_OPT_TABLE_END,
};

typedef struct enricher {
    fp_record rec;
    fp_buf out;
    fp_counter *m_unavailable;
} enricher;

static int handle_parsed(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
{
    enricher *e = ctx;
    char why[256];
    int rc = fp_record_decode_json(&e->rec, msg->payload, msg->len, why, sizeof(why));

    if (rc < 0)
        return fp_stage_reject(st, fp_record_err_code(rc), why);
    if (e->rec.enrichment.status == FP_ENRICH_NONE) {
        e->rec.enrichment.status = FP_ENRICH_UNAVAILABLE;
        fp_counter_inc(e->m_unavailable);
    }
    fp_buf_clear(&e->out);
    if (fp_record_encode_json(&e->rec, &e->out) < 0) {
        fp_error("out of memory encoding a record");
        return -1;
    }
    return fp_stage_emit(st, e->rec.device_id, strlen(e->rec.device_id), e->out.data, e->out.len);
}

int main(int argc, char **argv)
{
    enricher_config cfg;
    enricher e = {0};
    fp_stage *st;
    fp_http *http;
    bool http_off;
    char err[512];
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    fp_config_startup(argc, argv, "enricher-svc",
                      "Adds site, address and asset data to canonical records from IN_TOPIC and "
                      "writes them to OUT_TOPIC; bad input goes to DLQ_TOPIC.",
                      enricher_options, &cfg);
    fp_signal_install();
    fp_metrics_register_process("enricher-svc", FP_VERSION);
    fp_record_init(&e.rec);
    e.m_unavailable =
        fp_metrics_counter("fleetpipe_enrich_records_total",
                           "Records enriched, by resulting status.", "status=\"unavailable\"");

    st = fp_stage_new("enricher", &cfg.common, err, sizeof(err));
    if (st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", err, FP_KV_END);
        return 2;
    }
    http = fp_http_start(cfg.common.http_bind, (int)cfg.common.http_port, &http_off);
    if (http == NULL && !http_off) {
        fp_stage_free(st);
        return 1;
    }
    rc = fp_stage_run(st, handle_parsed, &e);
    fp_stage_free(st);
    fp_http_stop(http);
    fp_record_free(&e.rec);
    fp_buf_free(&e.out);
    return rc;
}
