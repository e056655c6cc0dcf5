/* Tests of enricher-svc/enrich.c: what a record keeps of the enrichment it came with. */
#include <string.h>

#include "fp_test.h"
#include "common/fp_record.h"
#include "enricher-svc/enrich.h"

/* A record as parser-svc makes it of an ISO 15143-3 machine: asset hints, status "none". */
static const char hinted[] =
    "{\"schema\":1,\"device_id\":\"CAT0320GZAP01234\",\"ts\":\"2026-03-02T06:55:00.000Z\","
    "\"enrichment\":{\"status\":\"none\",\"asset\":{\"oem\":\"CAT\",\"model\":\"320\","
    "\"serial_number\":\"ZAP01234\"}}}";

static const char *asset_json(const fp_record *r, fp_buf *b)
{
    fp_buf_clear(b);
    return fp_record_encode_json(r, b) == 0 ? fp_buf_cstr(b) : "(encode failed)";
}

FP_TEST(enrich_hints_stay_unless_the_registry_knows)
{
    fp_record r;
    fp_buf b = {0};
    char why[256];

    fp_record_init(&r);
    /* The registry does not know the machine (404, or no registry): the hints stay. */
    FP_CHECK_INT(fp_record_decode_json(&r, hinted, strlen(hinted), why, sizeof(why)), 0);
    enrich_start(&r);
    r.enrichment.status = FP_ENRICH_OK;
    FP_CHECK_STR(asset_json(&r, &b),
                 "{\"schema\":1,\"device_id\":\"CAT0320GZAP01234\",\"ts\":\"2026-03-02T06:55:00."
                 "000Z\",\"enrichment\":{\"status\":\"ok\",\"asset\":{\"oem\":\"CAT\",\"model\":"
                 "\"320\",\"serial_number\":\"ZAP01234\"}}}");

    /* The registry knows it: its answer is the asset, hints and all replaced. */
    FP_CHECK_INT(fp_record_decode_json(&r, hinted, strlen(hinted), why, sizeof(why)), 0);
    enrich_start(&r);
    {
        char customer[] = "ACME Earthworks", oem[] = "Caterpillar";
        lookup_answer a = {{customer, oem, NULL, NULL, NULL}};

        enrich_set_asset(&r, &a);
    }
    r.enrichment.status = FP_ENRICH_OK;
    FP_CHECK_STR(asset_json(&r, &b),
                 "{\"schema\":1,\"device_id\":\"CAT0320GZAP01234\",\"ts\":\"2026-03-02T06:55:00."
                 "000Z\",\"enrichment\":{\"status\":\"ok\",\"asset\":{\"customer\":\"ACME "
                 "Earthworks\",\"oem\":\"Caterpillar\"}}}");

    /* An earlier enricher's answer (status not "none") is no hint: it is all replaced. */
    {
        static const char enriched[] =
            "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T06:55:00.000Z\","
            "\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"s1\"},\"asset\":{\"oem\":\"X\"}}"
            "}";

        FP_CHECK_INT(fp_record_decode_json(&r, enriched, strlen(enriched), why, sizeof(why)), 0);
        enrich_start(&r);
        FP_CHECK_INT(r.enrichment.status, FP_ENRICH_NONE);
        FP_CHECK(!r.enrichment.has_asset && !r.enrichment.has_site);
        FP_CHECK_STR(asset_json(&r, &b), "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T06:"
                                         "55:00.000Z\"}");
    }
    fp_buf_free(&b);
    fp_record_free(&r);
}
